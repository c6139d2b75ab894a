"""Render the kustomizations under ``deploy/`` with ``kubectl kustomize`` and pick objects out.

The offline tests check what ``kubectl apply -k`` would send; the install tests apply the
same output to the local control plane. :func:`render_in_namespace` puts kustomizations in
another namespace the way a user would, with a kustomization whose ``namespace`` overrides
theirs, so that each test gets its own namespace.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPOSITORY_ROOT / "deploy"
CLUSTER_WIDE_DIR = DEPLOY_DIR
NAMESPACED_DIR = DEPLOY_DIR / "overlays" / "namespaced"
EXAMPLES_DIR = DEPLOY_DIR / "examples"
KUSTOMIZE_TIMEOUT_SECONDS = 60.0

OPERATOR_NAME = "experio-sso-operator"
SYSTEM_NAMESPACE = "experio-sso-system"
EXAMPLES_NAMESPACE = "experio"

Manifest = dict[str, Any]


def kustomization_dirs() -> list[Path]:
    """Return every directory under ``deploy/`` that contains a kustomization.yaml."""
    return sorted(path.parent for path in DEPLOY_DIR.rglob("kustomization.yaml"))


def render(kubectl: Path, directory: Path) -> list[Manifest]:
    """Run ``kubectl kustomize directory`` and return its documents, parsed afresh each call.

    The output is cached per directory for the test session. Raises :class:`AssertionError`
    with kubectl's message when rendering fails.
    """
    output = _kustomize(kubectl, directory)
    return [document for document in yaml.safe_load_all(output) if document]


@functools.cache
def _kustomize(kubectl: Path, directory: Path) -> str:
    result = subprocess.run(
        [str(kubectl), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=KUSTOMIZE_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return result.stdout


def render_in_namespace(
    kubectl: Path, directories: Iterable[Path], namespace: str, work_dir: Path
) -> list[Manifest]:
    """Render kustomizations together, with every namespaced object moved to ``namespace``.

    kustomize accepts only relative paths to other kustomizations, hence ``os.path.relpath``.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [os.path.relpath(directory, work_dir) for directory in directories],
    }
    (work_dir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    output = _kustomize.__wrapped__(kubectl, work_dir)
    return [document for document in yaml.safe_load_all(output) if document]


def find(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    """Return the one object of ``kind`` (and ``name``), and fail when there is none or several."""
    matches = select(manifests, kind, name)
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def select(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        manifest
        for manifest in manifests
        if manifest["kind"] == kind and (name is None or manifest["metadata"]["name"] == name)
    ]


def without(manifests: Iterable[Manifest], *kinds: str) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] not in kinds]


def operator_container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"expected one container, found {len(containers)}"
    return dict(containers[0])


def to_yaml(manifests: Iterable[Manifest]) -> str:
    return yaml.safe_dump_all(list(manifests))
