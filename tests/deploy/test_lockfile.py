"""requirements.lock pins exactly the runtime closure that the tests run with."""

from __future__ import annotations

from packaging.utils import canonicalize_name

from tests.deploy.lockfile import read_lock, runtime_closure, runtime_requirements


def test_lock_matches_test_environment() -> None:
    # On failure, regenerate: .venv/bin/python -m tests.deploy.lockfile > requirements.lock
    assert read_lock() == runtime_closure()


def test_lock_satisfies_pyproject() -> None:
    pins = read_lock()

    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, name
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]}"


def test_lock_leaves_out_development_tools() -> None:
    pins = read_lock()

    for tool in ("pytest", "mypy", "ruff", "propelauth-byo", "cryptography"):
        assert tool not in pins, tool
