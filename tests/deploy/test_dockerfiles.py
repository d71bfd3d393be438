"""The images install what the packaging says, run locked down, and get the files they copy.

No Docker engine is needed: the Dockerfiles are read, not built (tests/deploy/test_image_smoke.py
builds and starts them where an engine exists). Each service's image must install, from uv.lock,
exactly the repository's libraries its pyproject.toml needs (transitively), bake the city
when it uses civicgrid-city, run as a numeric non-root user and expose its port; the CLI image
must install everything the root package depends on; and .dockerignore must let through every
file the Dockerfiles copy, and nothing else of note.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from civicgrid.events.ownership import SERVICES
from civicgrid.servicekit.settings import DEFAULT_PORTS

REPO = Path(__file__).resolve().parents[2]
PYTHON_IMAGE = "python:3.11-slim"
CITY_DIR = "/etc/civicgrid/city"
CLI_DOCKERFILE = REPO / "deploy" / "docker" / "cli.Dockerfile"
LOCAL_PACKAGES = {
    "civicgrid-events": "libs/events",
    "civicgrid-city": "libs/city",
    "civicgrid-servicekit": "libs/servicekit",
    **{f"civicgrid-{service}": f"services/{service}" for service in SERVICES},
}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(path: Path) -> list[Instruction]:
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return found


def stages(path: Path) -> list[list[Instruction]]:
    """Instructions per build stage; the last one is the image that runs."""
    result: list[list[Instruction]] = []
    for instruction in instructions(path):
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return match.group(0).lower().replace("_", "-")


def local_dependencies(package_dir: str) -> set[str]:
    """The repository's package directories that ``package_dir`` needs, itself included."""
    needed = {package_dir}
    pyproject = tomllib.loads((REPO / package_dir / "pyproject.toml").read_text())
    for requirement in pyproject["project"].get("dependencies", []):
        name = requirement_name(requirement)
        if name in LOCAL_PACKAGES:
            needed |= local_dependencies(LOCAL_PACKAGES[name])
    return needed


def copied_sources(stage: list[Instruction]) -> list[str]:
    return [
        i.arguments.split()[0] for i in stage if i.keyword == "COPY" and "--from" not in i.arguments
    ]


# What every build stage copies besides package sources: the lock, the workspace root naming the
# members, and the script that fetches the pinned uv.
LOCK_INPUTS = {"pyproject.toml", "uv.lock", "tools/bootstrap_uv.py"}


def uv_synced(stage: list[Instruction]) -> list[str]:
    """The options of the build's one `uv sync`; it must install the lock as committed."""
    syncs = [i.arguments for i in stage if i.keyword == "RUN" and "uv sync" in i.arguments]
    assert len(syncs) == 1, syncs
    assert not [i for i in stage if i.keyword == "RUN" and "pip install" in i.arguments]
    options = syncs[0].split("uv sync", 1)[1].split()
    assert "--frozen" in options, "install uv.lock as committed, never re-resolve"
    assert "--no-editable" in options, "the venv must hold the code; /src stays in the build"
    assert not {"--all-extras", "--extra", "--dev"} & set(options), "no dev tools in an image"
    return options


def env_values(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in instruction.arguments.split():
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def assert_runs_locked_down(path: Path) -> list[Instruction]:
    build_stages = stages(path)
    args = [i.arguments for i in instructions(path) if i.keyword == "ARG"]
    assert f"PYTHON_IMAGE={PYTHON_IMAGE}" in args, args
    assert len(build_stages) >= 2, f"{path}: build in one stage, run in another"
    for stage in build_stages:
        assert stage[0].arguments.split()[0] == "${PYTHON_IMAGE}", stage[0]
    runtime = build_stages[-1]
    keywords = [i.keyword for i in instructions(path)]
    assert "HEALTHCHECK" not in keywords, "Kubernetes probes check health, not the image"
    (user,) = [i.arguments for i in runtime if i.keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {user}: a numeric non-root uid"
    assert gid.isdigit() and int(gid) > 0, f"USER {user}: a numeric non-root gid"
    assert keywords[-1] in {"ENTRYPOINT", "CMD"} and keywords.index("USER") > keywords.index("COPY")
    build_env = env_values(build_stages[0])
    assert build_env.get("UV_NO_CACHE") == "1", "uv keeps no cache in the image"
    assert build_env.get("UV_COMPILE_BYTECODE") == "1", "bytecode is written at build time"
    assert build_env.get("UV_PROJECT_ENVIRONMENT") == "/opt/civicgrid"
    runtime_env = env_values(runtime)
    # A read-only root filesystem: no bytecode written at run time, HOME on the /tmp emptyDir.
    assert runtime_env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert runtime_env.get("HOME") == "/tmp"
    return runtime


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_image_installs_only_what_its_packaging_needs(service: str) -> None:
    dockerfile = REPO / "services" / service / "Dockerfile"
    build = stages(dockerfile)[0]
    needed = local_dependencies(f"services/{service}")
    assert set(copied_sources(build)) == needed | LOCK_INPUTS
    options = uv_synced(build)
    assert options[options.index("--package") + 1] == f"civicgrid-{service}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_image_runs_non_root_and_serves_its_port(service: str) -> None:
    dockerfile = REPO / "services" / service / "Dockerfile"
    runtime = assert_runs_locked_down(dockerfile)
    port = DEFAULT_PORTS[service]
    assert [i.arguments for i in runtime if i.keyword == "EXPOSE"] == [str(port)]
    env = env_values(runtime)
    assert env[f"CIVICGRID_{service.upper()}_PORT"] == str(port)
    assert env["CIVICGRID_HTTP_HOST"] == "0.0.0.0"
    (entrypoint,) = [i.arguments for i in runtime if i.keyword == "ENTRYPOINT"]
    assert entrypoint == f'["python", "-m", "civicgrid.{service}"]'


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_that_reads_the_city_has_it_baked_in(service: str) -> None:
    runtime = stages(REPO / "services" / service / "Dockerfile")[-1]
    uses_city = "libs/city" in local_dependencies(f"services/{service}")
    baked = [i.arguments for i in runtime if i.keyword == "COPY" and CITY_DIR in i.arguments]
    env = env_values(runtime)
    if uses_city:
        assert baked == [f"config/longgang {CITY_DIR}"]
        assert env["CIVICGRID_CONFIG"] == CITY_DIR
    else:
        assert not baked and "CIVICGRID_CONFIG" not in env


def test_the_cli_image_installs_everything_the_civicgrid_command_depends_on() -> None:
    build = stages(CLI_DOCKERFILE)[0]
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = {"."}
    for requirement in root["project"]["dependencies"]:
        name = requirement_name(requirement)
        if name in LOCAL_PACKAGES:
            needed |= local_dependencies(LOCAL_PACKAGES[name])
    # The root project's sync installs every member it depends on, and only those.
    assert "--package" not in uv_synced(build)
    copied = copied_sources(build)
    for directory in needed - {"."}:
        assert any(directory == c or directory.startswith(f"{c}/") for c in copied), directory
    assert {"src", *LOCK_INPUTS} <= set(copied)
    runtime = assert_runs_locked_down(CLI_DOCKERFILE)
    (entrypoint,) = [i.arguments for i in runtime if i.keyword == "ENTRYPOINT"]
    assert entrypoint == '["civicgrid"]'


# --- .dockerignore ----------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(f"{regex}$")


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            include = line.startswith("!")
            rules.append((include, _pattern(line.removeprefix("!").strip("/"))))
    return rules


def sent_to_docker(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    sent = True
    for include, pattern in rules:
        if any(pattern.match(candidate) for candidate in candidates):
            sent = include
    return sent


def needed_files(source: str) -> list[Path]:
    """What building from ``source`` reads: for a Python package, its pyproject.toml and src/."""
    root = REPO / source
    if root.is_file():
        return [root]
    packages = [root] if (root / "pyproject.toml").exists() else []
    packages += [pyproject.parent for pyproject in root.glob("*/pyproject.toml")]
    if not packages:
        return [path for path in root.rglob("*") if path.is_file()]
    needed = []
    for package in packages:
        needed.append(package / "pyproject.toml")
        needed += [path for path in (package / "src").rglob("*") if path.is_file()]
    return needed


def test_dockerignore_sends_what_the_images_copy_and_nothing_of_note_else() -> None:
    rules = dockerignore_rules()
    dockerfiles = [*REPO.glob("services/*/Dockerfile"), CLI_DOCKERFILE]
    sources = {
        source for path in dockerfiles for stage in stages(path) for source in copied_sources(stage)
    }
    for source in sorted(sources):
        files = needed_files(source)
        assert files, f"{source}: copied but missing"
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if "__pycache__" in relative or relative.endswith(".pyc"):
                assert not sent_to_docker(relative, rules), relative
            else:
                assert sent_to_docker(relative, rules), f"{relative} is copied but ignored"
    kept_out = [
        ".venv/bin/python",
        ".git/HEAD",
        "data/credentials.json",
        "tests/e2e/test_x.py",
        "deploy/k8s/base/kustomization.yaml",
        *(f"services/{service}/tests/test_x.py" for service in SERVICES),
        "libs/city/tests/test_x.py",
        "libs/events/src/civicgrid/events/__pycache__/store.cpython-311.pyc",
        "src/civicgrid/cli/__pycache__/main.cpython-311.pyc",
    ]
    for path in kept_out:
        assert not sent_to_docker(path, rules), path
