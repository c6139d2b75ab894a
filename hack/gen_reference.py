"""Generate docs/reference.md, the field reference of both kinds, from the CRD schemas.

Run ``make docs`` after changing a CRD; ``tests/docs/test_reference.py`` fails when the
committed reference differs from what this script generates, so the two cannot drift apart.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
CRDS_DIR = REPOSITORY_ROOT / "crds"
REFERENCE_PATH = REPOSITORY_ROOT / "docs" / "reference.md"


def load_crds() -> list[dict[str, Any]]:
    crds = []
    for path in sorted(CRDS_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if document and document.get("kind") == "CustomResourceDefinition":
            crds.append(document)
    return crds


def describe_type(node: dict[str, Any]) -> str:
    kind = str(node.get("type", "object"))
    if kind == "array":
        items = node.get("items") or {}
        return f"[]{items.get('type', 'object')}"
    if node.get("format"):
        return f"{kind} ({node['format']})"
    return kind


def walk(
    node: dict[str, Any], path: str, required: bool
) -> Iterator[tuple[str, dict[str, Any], bool]]:
    yield path, node, required
    required_children = set(node.get("required") or [])
    for name, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}", name in required_children)
    items = node.get("items")
    if isinstance(items, dict) and (items.get("properties") or items.get("description")):
        yield from walk(items, f"{path}[]", False)


def flow_yaml(value: Any) -> str:
    """Return a default value as one line of YAML, as it would be written in a manifest."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_kind(crd: dict[str, Any]) -> list[str]:
    names = crd["spec"]["names"]
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema = version["schema"]["openAPIV3Schema"]
    lines = [
        f"## {names['kind']}",
        "",
        f"`{crd['spec']['group']}/{version['name']}`, namespaced, short name "
        f"`{', '.join(names.get('shortNames', []))}`.",
        "",
        cell(schema.get("description", "")),
        "",
    ]
    for section in ("spec", "status"):
        root = (schema.get("properties") or {}).get(section)
        if root is None:
            continue
        lines += [
            f"### {section}",
            "",
            "| field | type | required | default | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for path, node, required in walk(root, section, False):
            if path == section:
                continue
            default = node.get("default")
            default_text = "" if default is None else f"`{flow_yaml(default)}`"
            allowed = node.get("enum")
            description = cell(node.get("description", ""))
            if allowed:
                description += " Allowed: " + ", ".join(f"`{v}`" for v in allowed) + "."
            lines.append(
                f"| `{path}` | {describe_type(node)} | {'yes' if required else ''} | "
                f"{default_text} | {description} |"
            )
        lines.append("")

    rules = []
    for path, node, _ in walk(schema, "", False):
        for rule in node.get("x-kubernetes-validations") or []:
            rules.append(
                f"- `{path.lstrip('.') or '(object)'}`: {cell(rule.get('message', rule['rule']))}"
            )
    if rules:
        lines += ["### Admission rules", "", *rules, ""]

    columns = version.get("additionalPrinterColumns") or []
    if columns:
        lines += [
            "### kubectl get columns",
            "",
            "| column | source | shown |",
            "| --- | --- | --- |",
        ]
        for column in columns:
            shown = "`-o wide`" if column.get("priority", 0) else "always"
            lines.append(f"| {column['name']} | `{column['jsonPath']}` | {shown} |")
        lines.append("")
    return lines


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the CRD schemas in `crds/` by `hack/gen_reference.py` (`make docs`);",
        "do not edit by hand.",
        "",
    ]
    for crd in load_crds():
        lines += render_kind(crd)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        current = REFERENCE_PATH.read_text() if REFERENCE_PATH.exists() else ""
        if current != text:
            print(f"{REFERENCE_PATH} is out of date; run 'make docs'", file=sys.stderr)
            return 1
        return 0
    REFERENCE_PATH.parent.mkdir(exist_ok=True)
    REFERENCE_PATH.write_text(text)
    print(f"wrote {REFERENCE_PATH.relative_to(REPOSITORY_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
