"""Two replicas with kopf peering: only the active one writes, and the standby takes over."""

from __future__ import annotations

import pytest

from tests.fixtures.operator import OperatorEnv
from tests.support.control_plane import REPOSITORY_ROOT, ControlPlane

PEERING = "experio-sso-operator"
LIFETIME_SECONDS = 5


@pytest.fixture(scope="module")
def peering_crds(crds_installed: ControlPlane) -> ControlPlane:
    crds_installed.kubectl(
        "apply", "--server-side", "-f", str(REPOSITORY_ROOT / "deploy" / "peering" / "crds.yaml")
    )
    crds_installed.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/kopfpeerings.kopf.dev",
        "crd/clusterkopfpeerings.kopf.dev",
    )
    return crds_installed


def created_lines(log: str) -> int:
    return log.count("Created the sidecar client")


async def test_standby_takes_over_after_active_is_killed(
    peering_crds: ControlPlane, operator_env: OperatorEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = operator_env
    monkeypatch.setenv("EXPERIO_SSO_PEERING_LIFETIME_SECONDS", str(LIFETIME_SECONDS))
    await env.apply(
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": PEERING, "namespace": env.namespace},
        }
    )
    # The namespaced Role has no access to peering objects: run both replicas as admin.
    admin = env.cluster.kubeconfig
    peering_args = (f"--peering={PEERING}",)
    low = await env.start_operator(*peering_args, "--peering-priority=10", kubeconfig=admin)
    high = await env.start_operator(*peering_args, "--peering-priority=20", kubeconfig=admin)

    await env.ready_settings()
    await env.ready_client("first", domains=["first.example"])

    assert created_lines(high.log()) == 1
    assert created_lines(low.log()) == 0

    await high.kill()
    await env.create_secret("second-idp", {"clientSecret": "second-secret"})
    await env.apply(env.client_manifest("second", domains=["second.example"]))
    await env.wait_condition("ssoclient", "second", timeout=60)

    assert created_lines(low.log()) == 1
    body = await env.get("ssoclient", "second")
    assert body is not None
    customer_ids = [c["customerId"] for c in env.emulator.clients()]
    assert sorted(customer_ids) == sorted(
        [
            (await env.get("ssoclient", "first") or {})["status"]["customerId"],
            body["status"]["customerId"],
        ]
    )

    assert "is the active one" in low.log()
