"""Writes or checks the committed AsyncAPI documents, one per service, in docs/asyncapi/."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from civicgrid.events.ownership import SERVICES
from civicgrid.servicekit.asyncapi import asyncapi_document
from civicgrid.servicekit.settings import ServiceSettings

DOCS_DIR = Path(__file__).resolve().parents[3] / "docs" / "asyncapi"


def generate(service: str) -> dict[str, Any]:
    app = importlib.import_module(f"civicgrid.{service}.app")
    if hasattr(app, "asyncapi_schema"):
        # A service that adds to the shared document (intake: the replies to its requests).
        document: dict[str, Any] = app.asyncapi_schema()
        return document
    # Defaults only: a URL with credentials must never end up in a committed document.
    settings = ServiceSettings.from_env(service, env={})
    return asyncapi_document(app.build(settings))


def render(service: str) -> str:
    return json.dumps(generate(service), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the committed documents")
    parser.add_argument("--dir", type=Path, default=DOCS_DIR)
    args = parser.parse_args(argv)
    stale = []
    for service in SERVICES:
        path = args.dir / f"{service}.json"
        text = render(service)
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(str(path))
    if stale:
        print("stale AsyncAPI documents (run `make asyncapi`):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
