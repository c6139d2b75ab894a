"""Runtime faults that wait for a person: each is reported once, and none causes a busy loop.

Four SSOClients are stuck at once: a missing Secret, a Secret without the key, an empty value,
and an authorization URL that the CRD admits but the sidecar rejects (port 99999), which
gives ``InvalidFields``. The operator runs with a drift interval of 5 seconds, the shortest, so
that timers fire several times within the 20-second measurement.

Figures printed: sidecar requests and Kubernetes API requests per minute during the window.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from experio_sso.backoff import Backoff
from tests.faults.helpers import client_with_secret, command_summary, requests_between
from tests.fixtures.operator import OperatorEnv

DRIFT_INTERVAL_SECONDS = 5
MEASURE_SECONDS = 20.0
KUBE_REQUEST_LINE = re.compile(r"\] experio_sso\.kube\s+\[DEBUG\s*\] \w+ /\S+ returned \d+")


async def test_stalled_clients_without_hot_loops(
    operator_env: OperatorEnv, record_property: pytest.RecordProperty
) -> None:
    env = operator_env
    await env.start_operator(f"--drift-interval-seconds={DRIFT_INTERVAL_SECONDS}")
    await env.ready_settings()

    await env.create_secret("no-key-idp", {"somethingElse": "value"})
    await env.create_secret("empty-idp", {"clientSecret": ""})
    await env.apply(
        env.client_manifest("missing", secret="missing-idp", domains=["missing.example.com"]),
        env.client_manifest("no-key", secret="no-key-idp", domains=["no-key.example.com"]),
        env.client_manifest("empty", secret="empty-idp", domains=["empty.example.com"]),
        *client_with_secret(
            env,
            "invalid",
            "invalid-secret",
            domains=["invalid.example.com"],
            idp={
                "type": "Generic",
                "clientId": "invalid-client-id",
                "authUrl": "https://idp.example.com:99999/authorize",
                "tokenUrl": "https://idp.example.com/token",
                "userinfoUrl": "https://idp.example.com/userinfo",
            },
        ),
    )

    expected = {
        "missing": ("SecretNotFound", "spec.identityProvider.clientSecretRef"),
        "no-key": ("SecretKeyMissing", "spec.identityProvider.clientSecretRef"),
        "empty": ("SecretKeyMissing", "is empty"),
        "invalid": ("InvalidFields", "authUrl"),
    }
    for name, (reason, text) in expected.items():
        ready = await env.wait_condition("ssoclient", name, status="False", reason=reason)
        assert text in ready["message"], ready["message"]
        stalled = await env.condition("ssoclient", name, "Stalled")
        assert stalled is not None
        assert stalled["status"] == "True"

    # Measure what the operator sends while the four clients stay stuck.
    log_offset = len(env.operator_logs())
    window_started_at = time.time()
    await asyncio.sleep(MEASURE_SECONDS)
    window_ended_at = time.time()
    minutes = (window_ended_at - window_started_at) / 60

    sidecar_requests = requests_between(env.emulator, window_started_at, window_ended_at)
    by_command = command_summary(sidecar_requests)
    kube_requests = len(KUBE_REQUEST_LINE.findall(env.operator_logs()[log_offset:]))
    print(
        f"\nruntime faults over {MEASURE_SECONDS:.0f} s: sidecar {len(sidecar_requests)} requests "
        f"({len(sidecar_requests) / minutes:.0f} per minute) {by_command}; Kubernetes API "
        f"{kube_requests} requests ({kube_requests / minutes:.0f} per minute)"
    )
    record_property("sidecar_requests_per_minute", round(len(sidecar_requests) / minutes))
    record_property("kube_requests_per_minute", round(kube_requests / minutes))

    for name, (reason, _) in expected.items():
        ready = await env.condition("ssoclient", name)
        assert ready is not None
        assert ready["reason"] == reason

    # At most one pass per object and drift interval (plus one in progress at each edge),
    # and only the settings' Ping and the InvalidFields client's create reach the sidecar.
    passes_per_object = MEASURE_SECONDS / DRIFT_INTERVAL_SECONDS + 2
    assert set(by_command) <= {"Ping", "CreateOidcClient"}
    assert by_command.get("CreateOidcClient", 0) <= passes_per_object
    assert by_command.get("Ping", 0) <= passes_per_object
    # Each pass of a stuck client reads its Secret at most once; the settings read nothing.
    assert kube_requests <= 4 * passes_per_object + 2

    # The operator recovers by itself once the missing Secret appears: the Secret watch
    # queues the client, so this does not wait for the drift timer.
    created = time.monotonic()
    await env.create_secret("missing-idp", {"clientSecret": "missing-secret"})
    await env.wait_condition("ssoclient", "missing", timeout=10)
    recovery_seconds = time.monotonic() - created
    print(f"  the client with the missing Secret was Ready {recovery_seconds:.1f} s after it")
    assert recovery_seconds < DRIFT_INTERVAL_SECONDS


def test_backoff_delay_after_many_failures() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0)

    delay = backoff.delay(5000)

    assert 30.0 <= delay <= 60.0
