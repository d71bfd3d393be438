"""The built images start for real: each against a nats-server, as uid 10001 on a read-only root.

Runs deploy/docker/images.py's smoke check (what `make smoke` runs). It needs a working container
engine (docker, podman or buildah; buildah runs here as root with chroot isolation) and the
images `make images` builds; without them it skips and says which is missing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def images_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("images", REPO / "deploy/docker/images.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["images"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
def test_every_image_starts_locked_down_and_becomes_ready() -> None:
    images = images_module()
    try:
        engine = images.find_engine()
    except images.NoEngine as error:
        pytest.skip(str(error))
    missing = [
        images.image_name(name)
        for name in images.dockerfiles()
        if not engine.image_exists(images.image_name(name))
    ]
    if missing:
        pytest.skip(f"{engine.name}: not built, run `make images`: {', '.join(missing)}")
    assert images.smoke(engine) == ["cli", *images.SERVICES]
