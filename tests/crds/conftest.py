"""Fixtures for the CRD tests: the CRDs installed in the session's control plane."""

from __future__ import annotations

import pytest

from tests.crds.crd_files import CRDS_DIR, SETTINGS_RESOURCE, SSO_CLIENT_RESOURCE
from tests.support.control_plane import ControlPlane


@pytest.fixture(scope="session")
def experio_crds(cluster: ControlPlane) -> ControlPlane:
    """Install the CRDs from ``crds/`` once per session and wait until both are Established.

    Server-side apply with ``--force-conflicts`` makes this idempotent, also when another
    test module installed the same files first. The directory contains a kustomization.yaml,
    so it is applied with ``-k``: ``-f`` would send the Kustomization to the API server.
    """
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(CRDS_DIR))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        f"crd/{SETTINGS_RESOURCE}",
        f"crd/{SSO_CLIENT_RESOURCE}",
    )
    return cluster
