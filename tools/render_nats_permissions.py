"""Rewrite the *_PERMISSIONS blocks of deploy/k8s/base/nats/authorization.conf from the code.

    .venv/bin/python tools/render_nats_permissions.py

The grants live in civicgrid.events.permissions; a test fails when the copy differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from civicgrid.events.permissions import EXTERNAL_GRANT, SERVICE_GRANTS

CONF = Path(__file__).resolve().parent.parent / "deploy/k8s/base/nats/authorization.conf"


def main() -> None:
    text = CONF.read_text()
    for user, grant in {**SERVICE_GRANTS, "external": EXTERNAL_GRANT}.items():
        block = f"{user.upper()}_PERMISSIONS = {json.dumps(grant.as_nats_permissions(), indent=2)}"
        pattern = re.compile(rf"^{user.upper()}_PERMISSIONS = \{{.*?^\}}$", re.M | re.S)
        text, found = pattern.subn(lambda _match, block=block: block, text)
        if found != 1:
            raise SystemExit(f"{CONF}: no single {user.upper()}_PERMISSIONS block")
    CONF.write_text(text)


if __name__ == "__main__":
    main()
