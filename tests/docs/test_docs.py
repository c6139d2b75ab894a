"""The docs cannot drift from the code: generated parts match, every reason is explained."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from experio_sso.conditions import Reason
from experio_sso.config import ENV_PREFIX, OperatorConfig

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "hack" / "gen_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_matches_crd_schemas() -> None:
    generator = load_generator()

    committed = (ROOT / "docs" / "reference.md").read_text()

    assert committed == generator.render(), "docs/reference.md is out of date; run 'make docs'"


def troubleshooting_reasons() -> set[str]:
    section = README.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z]+)` \|", section, flags=re.MULTILINE))


@pytest.mark.parametrize("reason", [r.value for r in Reason])
def test_troubleshooting_explains_reason(reason: str) -> None:
    assert reason in troubleshooting_reasons()


def test_troubleshooting_lists_no_unknown_reason() -> None:
    assert troubleshooting_reasons() <= {r.value for r in Reason}


@pytest.mark.parametrize("field", sorted(OperatorConfig.model_fields))
def test_readme_documents_setting(field: str) -> None:
    assert f"`{ENV_PREFIX}{field.upper()}`" in README
