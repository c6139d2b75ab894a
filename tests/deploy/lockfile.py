"""The pinned runtime dependencies of the container image, computed from the installed packages.

``requirements.lock`` at the repository root pins every distribution that the operator needs at
run time: the ``dependencies`` of ``pyproject.toml`` and everything they require, at the
versions installed in the environment that runs the tests. The Dockerfile installs exactly these
pins, so the image runs the versions the tests ran. Development extras are left out.

Regenerate the file after changing dependencies or upgrading the environment::

    .venv/bin/python -m tests.deploy.lockfile > requirements.lock
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
LOCK_PATH = REPOSITORY_ROOT / "requirements.lock"
PYPROJECT_PATH = REPOSITORY_ROOT / "pyproject.toml"

# The image's platform: python:3.11-slim on Linux. Markers are evaluated for it, not for the
# machine that runs this module.
IMAGE_ENVIRONMENT = {
    **default_environment(),
    "python_version": "3.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}

HEADER = """\
# Runtime dependencies of experio-sso-operator, pinned for the container image (Dockerfile).
# Generated from the test environment by `.venv/bin/python -m tests.deploy.lockfile`.
# tests/deploy/test_lockfile.py fails when this file and that environment differ.
"""


def runtime_requirements() -> list[Requirement]:
    """Return the ``[project] dependencies`` of pyproject.toml."""
    project = tomllib.loads(PYPROJECT_PATH.read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    """Tell whether a requirement applies in the image, given the extras requested of its owner."""
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": extra})
        for extra in (extras or {""})
    )


def runtime_closure() -> dict[str, str]:
    """Return ``{distribution name: installed version}`` for the runtime dependency closure.

    Raises :class:`metadata.PackageNotFoundError` when a required distribution is not
    installed in this environment.
    """
    pinned: dict[str, str] = {}
    pending = [(requirement, frozenset[str]()) for requirement in runtime_requirements()]
    seen_extras: dict[str, frozenset[str]] = {}
    while pending:
        requirement, owner_extras = pending.pop()
        if not applies(requirement, owner_extras):
            continue
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras) | seen_extras.get(name, frozenset())
        if name in pinned and extras == seen_extras.get(name):
            continue
        seen_extras[name] = extras
        distribution = metadata.distribution(name)
        pinned[name] = distribution.version
        for line in distribution.requires or []:
            pending.append((Requirement(line), extras))
    return dict(sorted(pinned.items()))


def render_lock(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in pins.items())


def read_lock(path: Path = LOCK_PATH) -> dict[str, str]:
    """Parse ``name==version`` lines, skipping comments and blank lines."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        pins[canonicalize_name(name)] = version.strip()
    return pins


if __name__ == "__main__":
    sys.stdout.write(render_lock(runtime_closure()))
