"""Fetch the pinned uv from PyPI into a directory, with nothing but the Python standard library.

A fresh Debian has python3.11 but neither pip nor the venv module (python3-pip, python3-venv), so
the Makefile cannot pip-install uv. A uv wheel is a zip holding one static binary: download it,
check its sha256 against the hash pinned here, and unpack the binary. Usage:

    python3 tools/bootstrap_uv.py .tools    # -> .tools/uv
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import ssl
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

VERSION = "0.13.9"
INDEX = os.environ.get("UV_BOOTSTRAP_INDEX", "https://pypi.org/simple")
# (machine, C library) -> the wheel and its sha256, as PyPI lists them for uv 0.13.9.
WHEELS: dict[tuple[str, str], tuple[str, str]] = {
    ("x86_64", "glibc"): (
        "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    ),
    ("x86_64", "musl"): (
        "uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl",
        "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
    ),
    ("aarch64", "glibc"): (
        "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
    ("aarch64", "musl"): (
        "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
}


def wheel_for_this_machine() -> tuple[str, str]:
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
    libc = "glibc" if platform.libc_ver()[0] == "glibc" else "musl"
    if sys.platform != "linux" or (machine, libc) not in WHEELS:
        raise SystemExit(
            f"bootstrap_uv: no pinned uv wheel for {sys.platform}/{machine}/{libc}; "
            "install uv yourself (https://docs.astral.sh/uv/) and put it on PATH"
        )
    return WHEELS[(machine, libc)]


def wheel_url(filename: str) -> str:
    """The wheel's address, read from the PyPI simple index (files live on another host)."""
    page = fetch(f"{INDEX}/uv/").decode()
    marker = f"/{filename}"
    for chunk in page.split('href="')[1:]:
        href = chunk.split('"', 1)[0].split("#", 1)[0]
        if href.endswith(marker):
            return href if "://" in href else urllib.parse.urljoin(f"{INDEX}/uv/", href)
    raise SystemExit(f"bootstrap_uv: {filename} is not listed on {INDEX}/uv/")


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return bytes(response.read())
    except urllib.error.URLError as error:
        # A minimal Debian may lack ca-certificates. The wheel's bytes are checked against the
        # sha256 pinned above, so an unverified TLS channel cannot hand over another binary.
        if not isinstance(error.reason, ssl.SSLCertVerificationError):
            raise
        print("bootstrap_uv: no trusted CA store; relying on the pinned sha256", file=sys.stderr)
        context = ssl._create_unverified_context()
        with urllib.request.urlopen(url, timeout=120, context=context) as response:
            return bytes(response.read())


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".tools")
    filename, sha256 = wheel_for_this_machine()
    data = fetch(wheel_url(filename))
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"bootstrap_uv: {filename} has sha256 {digest}, expected {sha256}")
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        binary = wheel.read(f"uv-{VERSION}.data/scripts/uv")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / "uv.partial"
    partial.write_bytes(binary)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target / "uv")  # atomic: a half-written uv never looks installed
    print(f"bootstrap_uv: uv {VERSION} -> {target / 'uv'}")


if __name__ == "__main__":
    main()
