"""Fixtures for the deploy/ tests: the kubectl binary that renders the kustomizations."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.control_plane import locate_assets


@pytest.fixture(scope="session")
def kubectl(request: pytest.FixtureRequest) -> Path:
    """Return the kubectl binary: from KUBEBUILDER_ASSETS, the asset cache, or PATH.

    With ``--no-cluster`` the asset script is not run, because it may build the binaries for
    minutes. The tests that render then use kubectl from PATH, or are skipped without one.
    """
    if os.environ.get("KUBEBUILDER_ASSETS") or not request.config.getoption("--no-cluster"):
        return locate_assets() / "kubectl"
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl not found: set KUBEBUILDER_ASSETS (see 'make k8s-assets')")
    return Path(found)
