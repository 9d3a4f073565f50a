"""The lock files (requirements/, ``make lock``) agree with pyproject.toml and are what the
image and ``make setup`` install: every package pinned to one version with its hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.deploy import deploy_files as df

LOCKS = df.ROOT / "requirements"
#: ``name==version`` at the start of a requirement (markers may follow).
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, set[str]]:
    """Each package's pinned versions (one, or one per marker) in a lock file; fails on a
    requirement without hashes or not pinned with ``==``."""
    pins: dict[str, set[str]] = {}
    requirement: list[str] = []
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("    "):
            requirement.append(line.strip())
            continue
        if requirement:
            head = requirement[0]
            match = _PIN.match(head)
            assert match, f"{path.name}: not pinned with ==: {head}"
            assert any(part.startswith("--hash=sha256:") for part in requirement[1:]), (
                f"{path.name}: {head} has no hash"
            )
            pins.setdefault(canonical(match.group(1)), set()).add(match.group(2))
        requirement = [line] if line and not line.startswith("#") else []
    return pins


def pyproject_pins(*, dev: bool) -> dict[str, str]:
    project = tomllib.loads((df.ROOT / "pyproject.toml").read_text())["project"]
    found = list(project["dependencies"])
    if dev:
        found += project["optional-dependencies"]["dev"]
    pins = {}
    for requirement in found:
        match = _PIN.match(requirement)
        assert match, f"pyproject.toml: not pinned with ==: {requirement}"
        pins[canonical(match.group(1))] = match.group(2)
    return pins


@pytest.mark.parametrize(("lock", "dev"), [("runtime.txt", False), ("dev.txt", True)])
def test_every_pin_of_pyproject_is_locked_at_its_version(lock: str, dev: bool) -> None:
    pins = locked(LOCKS / lock)
    for name, version in pyproject_pins(dev=dev).items():
        assert pins.get(name) == {version}, (
            f"{lock}: {name} is {pins.get(name)}, pyproject {version}"
        )


def test_the_image_s_code_generator_runs_the_runtime_s_versions() -> None:
    runtime, codegen = locked(LOCKS / "runtime.txt"), locked(LOCKS / "codegen.txt")
    assert "grpcio-tools" in codegen
    assert pyproject_pins(dev=True)["grpcio-tools"] in codegen["grpcio-tools"]
    for name in set(runtime) & set(codegen):
        assert runtime[name] == codegen[name], name


def test_the_dev_lock_holds_the_runtime_lock() -> None:
    runtime, dev = locked(LOCKS / "runtime.txt"), locked(LOCKS / "dev.txt")
    assert {n: v for n, v in dev.items() if n in runtime} == runtime


def test_the_image_and_make_setup_install_only_from_the_locks() -> None:
    dockerfile = df.DOCKERFILE.read_text()
    installs = re.findall(r"pip install ([^&]+)", dockerfile.replace("\\\n", " "))
    assert installs, "the Dockerfile installs nothing?"
    for install in installs:
        assert "--require-hashes" in install, install
        assert "--no-deps" in install, install
        assert re.search(r"-r requirements/(runtime|codegen)\.txt", install), install
    makefile = (df.ROOT / "Makefile").read_text().replace("\\\n", " ")
    setup = [line for line in makefile.splitlines() if "pip install" in line]
    assert any("--require-hashes" in s and "-r requirements/dev.txt" in s for s in setup)
    assert all("--require-hashes" in s or "--no-deps -e ." in s for s in setup), setup
