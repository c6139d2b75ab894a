"""Static checks of the Dockerfile and .dockerignore (no Docker engine runs in the tests)."""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.support.control_plane import REPOSITORY_ROOT

DOCKERFILE = REPOSITORY_ROOT / "Dockerfile"
DOCKERIGNORE = REPOSITORY_ROOT / ".dockerignore"


def instructions(stage: str) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in stage.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    pairs = []
    for line in joined:
        keyword, _, arguments = line.partition(" ")
        pairs.append((keyword.upper(), arguments.strip()))
    return pairs


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of instructions starting with its FROM."""
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_dockerfile_has_build_and_final_stage(stages: list[list[tuple[str, str]]]) -> None:
    assert len(stages) == 2
    assert stages[0][0][1].endswith(" AS build")
    arguments = dict(instructions(DOCKERFILE.read_text())[:1])
    assert arguments["ARG"].startswith("PYTHON_IMAGE=python:3.11-slim")


def test_build_installs_locked_dependencies(stages: list[list[tuple[str, str]]]) -> None:
    runs = [arguments for keyword, arguments in stages[0] if keyword == "RUN"]

    assert any("--no-deps" in run and "-r /src/requirements.lock" in run for run in runs)
    assert any("pip check" in run for run in runs)


def test_final_stage_has_no_build_tools(stages: list[list[tuple[str, str]]]) -> None:
    final = stages[1]

    assert not [arguments for keyword, arguments in final if keyword in {"RUN", "ADD"}]
    copies = [arguments for keyword, arguments in final if keyword == "COPY"]
    assert copies == ["--from=build /opt/experio-sso /opt/experio-sso"]


def test_final_stage_runs_as_numeric_non_root_user(stages: list[list[tuple[str, str]]]) -> None:
    users = [arguments for keyword, arguments in stages[1] if keyword == "USER"]

    assert users == ["65532:65532"]


def test_final_stage_writes_no_bytecode(stages: list[list[tuple[str, str]]]) -> None:
    environment = " ".join(arguments for keyword, arguments in stages[1] if keyword == "ENV")

    assert "PYTHONDONTWRITEBYTECODE=1" in environment


def test_entrypoint_is_console_script(stages: list[list[tuple[str, str]]]) -> None:
    entrypoints = [arguments for keyword, arguments in stages[1] if keyword == "ENTRYPOINT"]
    scripts = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert len(entrypoints) == 1
    command = json.loads(entrypoints[0])
    assert command == ["experio-sso", "run"]
    assert scripts["experio-sso"] == "experio_sso.cli:main"


def test_dockerignore_sends_only_build_inputs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert patterns[0] == "*"
    included = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert included == {"requirements.lock", "pyproject.toml", "README.md", "operator"}


def test_dockerfile_copies_only_included_paths(stages: list[list[tuple[str, str]]]) -> None:
    sources: list[str] = []
    for keyword, arguments in stages[0]:
        if keyword == "COPY":
            sources.extend(arguments.split()[:-1])

    assert sorted(source.rstrip("/") for source in sources) == sorted(
        ["requirements.lock", "pyproject.toml", "README.md", "operator"]
    )
