"""Load the project's CustomResourceDefinitions from ``crds/``.

The offline tests read the schemas from here, and the cluster tests install the same
directory with ``kubectl apply -k``. The files listed in ``crds/kustomization.yaml`` are the
CRDs, and the offline tests report any other YAML file in the directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CRDS_DIR = Path(__file__).resolve().parents[2] / "crds"
GROUP = "auth.experio.cloud"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Fully qualified resource names, so that kubectl never resolves them to another group.
SETTINGS_RESOURCE = f"experioauthsettings.{GROUP}"
SSO_CLIENT_RESOURCE = f"ssoclients.{GROUP}"

Schema = dict[str, Any]


def listed_crd_files() -> list[Path]:
    """Return the CRD files that ``crds/kustomization.yaml`` lists, in its order."""
    kustomization = yaml.safe_load((CRDS_DIR / "kustomization.yaml").read_text())
    return [CRDS_DIR / resource for resource in kustomization["resources"]]


def load_crds() -> dict[str, Schema]:
    """Load every CRD listed in ``crds/kustomization.yaml``, keyed by kind."""
    crds: dict[str, Schema] = {}
    for path in listed_crd_files():
        crd = yaml.safe_load(path.read_text())
        crds[crd["spec"]["names"]["kind"]] = crd
    return crds


def served_version(crd: Schema, name: str = VERSION) -> Schema:
    """Return the entry of ``spec.versions`` with the given name."""
    for version in crd["spec"]["versions"]:
        if version["name"] == name:
            return dict(version)
    raise KeyError(f"{crd['metadata']['name']} has no version {name}")


def root_schema(crd: Schema) -> Schema:
    """Return the ``openAPIV3Schema`` of the served version."""
    return dict(served_version(crd)["schema"]["openAPIV3Schema"])


def walk_schema(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Yield ``(path, node)`` for the schema and every node below it.

    Paths read like the API server's field paths: ``spec.emailDomains`` for a property and
    ``spec.emailDomains[*]`` for the items of a list. The root has the empty path.
    """
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk_schema(child, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from walk_schema(schema["items"], f"{path}[*]")
