"""End-to-end tests of ``experio-sso resolve EMAIL -n NS``, run as a subprocess.

The operator syncs the namespace's SSOClients first, because the command routes only clients
whose status records a customer ID and (for active ones) Ready.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.operator import OperatorEnv

EXPERIO_SSO = Path(sys.executable).parent / "experio-sso"
EXIT_RESOLVED = 0
EXIT_NOT_RESOLVED = 1
EXIT_USAGE = 2

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


async def resolve(env: OperatorEnv, email: str, *options: str) -> CommandResult:
    process = await asyncio.create_subprocess_exec(
        str(EXPERIO_SSO),
        "resolve",
        email,
        "-n",
        env.namespace,
        f"--kubeconfig={env.cluster.kubeconfig}",
        *options,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return CommandResult(process.returncode, stdout.decode(), stderr.decode())


async def customer_id(env: OperatorEnv, name: str) -> str:
    body = await env.get("ssoclient", name)
    assert body is not None
    return str(body["status"]["customerId"])


@pytest.fixture
async def routed_namespace(operator_env: OperatorEnv) -> OperatorEnv:
    """A namespace with a client for acme.com, an allow-all client and an inactive client."""
    env = operator_env
    await env.start_operator()
    await env.ready_settings()
    await env.ready_client("acme", domains=["acme.com"])
    await env.ready_client("fallback")
    await env.ready_client("gamma", domains=["gamma.com"], active=False)
    return env


async def test_routed_domain_resolves(routed_namespace: OperatorEnv) -> None:
    env = routed_namespace

    result = await resolve(env, "Jane.Doe@ACME.com")

    assert result.exit_code == EXIT_RESOLVED, result.stderr
    assert f"SSOClient {env.namespace}/acme" in result.stdout
    assert await customer_id(env, "acme") in result.stdout


async def test_unknown_domain_uses_allow_all(routed_namespace: OperatorEnv) -> None:
    env = routed_namespace

    result = await resolve(env, "someone@unknown.org")

    assert result.exit_code == EXIT_RESOLVED, result.stderr
    assert f"SSOClient {env.namespace}/fallback" in result.stdout
    assert await customer_id(env, "fallback") in result.stdout


async def test_inactive_domain_is_not_enabled(routed_namespace: OperatorEnv) -> None:
    env = routed_namespace

    result = await resolve(env, "user@gamma.com")

    assert result.exit_code == EXIT_NOT_RESOLVED
    assert "SSO not enabled for this organization" in result.stdout
    assert "gamma" in result.stdout


async def test_json_output(routed_namespace: OperatorEnv) -> None:
    env = routed_namespace

    resolved = await resolve(env, "user@acme.com", "-o", "json")
    rejected = await resolve(env, "user@gamma.com", "-o", "json")

    assert resolved.exit_code == EXIT_RESOLVED
    assert json.loads(resolved.stdout) == {
        "email": "user@acme.com",
        "namespace": env.namespace,
        "client": "acme",
        "customerId": await customer_id(env, "acme"),
        "error": None,
    }
    assert rejected.exit_code == EXIT_NOT_RESOLVED
    assert json.loads(rejected.stdout) == {
        "email": "user@gamma.com",
        "namespace": env.namespace,
        "client": "gamma",
        "customerId": await customer_id(env, "gamma"),
        "error": "SSO not enabled for this organization",
    }


async def test_nothing_matches_is_not_configured(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    await env.ready_settings()
    await env.ready_client("acme", domains=["acme.com"])

    text = await resolve(env, "user@unknown.org")
    structured = await resolve(env, "user@unknown.org", "-o", "json")

    assert text.exit_code == EXIT_NOT_RESOLVED
    assert "SSO not configured for this organization" in text.stdout
    assert structured.exit_code == EXIT_NOT_RESOLVED
    document = json.loads(structured.stdout)
    assert document["client"] is None
    assert document["customerId"] is None
    assert document["error"] == "SSO not configured for this organization"


async def test_empty_namespace_is_not_configured(operator_env: OperatorEnv) -> None:
    result = await resolve(operator_env, "user@acme.com")

    assert result.exit_code == EXIT_NOT_RESOLVED
    assert "SSO not configured for this organization" in result.stdout


async def test_invalid_email_is_usage_error(operator_env: OperatorEnv) -> None:
    result = await resolve(operator_env, "not-an-email")

    assert result.exit_code == EXIT_USAGE
    assert "invalid email" in result.stderr
    assert result.stdout == ""
