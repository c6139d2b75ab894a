"""Install deploy/ on the local control plane and run the operator with its ServiceAccount.

Each test applies the RBAC of one install variant but not the Deployment, because there is no
kubelet to run it. It then starts ``experio-sso run`` as a subprocess with a token of the
installed ServiceAccount and the Deployment's environment, and applies the examples with the
sidecar URL pointed at the in-process emulator. The examples must reach Ready, which proves
that the granted permissions suffice. ``kubectl auth can-i`` and real requests with the same
token prove that nothing beyond them is granted.

The CRDs come from the session's ``crds_installed`` fixture, which applies ``crds/``
idempotently; the cluster-scoped objects of the cluster-wide install are applied the same way.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.manifests import (
    CLUSTER_WIDE_DIR,
    EXAMPLES_DIR,
    NAMESPACED_DIR,
    OPERATOR_NAME,
    SYSTEM_NAMESPACE,
    Manifest,
    find,
    operator_container,
    render,
    render_in_namespace,
    select,
    to_yaml,
    without,
)
from tests.fixtures.operator import OperatorEnv, OperatorProcess, wait_for
from tests.support.control_plane import ControlPlane

READY_TIMEOUT_SECONDS = 60.0
EXAMPLE_SETTINGS = "experio"
EXAMPLE_CLIENTS = ("contoso", "fabrikam", "northwind")

# A spec change reaches the sidecar within a second or two once the watches run.
CHANGE_TIMEOUT_SECONDS = 15.0


# --- helpers ---------------------------------------------------------------------------------


async def kubectl_as(
    cluster: ControlPlane, *args: str, kubeconfig: Path | None = None, input: str | None = None
) -> tuple[int, str]:
    """Run kubectl as admin, or as the user of ``kubeconfig``, and return exit code and output."""
    result = await asyncio.to_thread(
        cluster.kubectl, *args, input=input, check=False, kubeconfig=kubeconfig
    )
    return result.returncode, (result.stdout + result.stderr).strip()


async def apply_server_side(cluster: ControlPlane, manifests: list[Manifest]) -> None:
    """Apply as admin with server-side apply, so that repeating it in a session is harmless."""
    code, output = await kubectl_as(
        cluster, "apply", "--server-side", "--force-conflicts", "-f", "-", input=to_yaml(manifests)
    )
    assert code == 0, output


def prepared_examples(kubectl: Path, env: OperatorEnv, work_dir: Path) -> list[Manifest]:
    """Render the examples into the test namespace, with the placeholders made real.

    The sidecar URL points at the emulator and the setup secret is the emulator's. The client
    secrets keep their placeholder values, which the emulator stores like any other value.
    """
    examples = render_in_namespace(kubectl, [EXAMPLES_DIR], env.namespace, work_dir)
    examples = without(examples, "Namespace")
    settings = find(examples, "ExperioAuthSettings", EXAMPLE_SETTINGS)
    assert settings["spec"]["sidecar"]["url"] == "http://propelauth:2884"
    settings["spec"]["sidecar"]["url"] = env.emulator.url
    setup = find(examples, "Secret", "propelauth-setup")
    setup["stringData"]["setupSecret"] = env.setup_secret
    return examples


def use_deployment_environment(
    monkeypatch: pytest.MonkeyPatch, deployment: Manifest, namespace: str
) -> dict[str, str]:
    """Export the Deployment's EXPERIO_SSO_* variables to the operator subprocess.

    ``OperatorProcess`` still passes ``--liveness-url`` on a free loopback port and
    ``--log-level=DEBUG``, which override two of them.
    """
    environment: dict[str, str] = {}
    for variable in operator_container(deployment).get("env") or []:
        if "value" in variable:
            environment[variable["name"]] = str(variable["value"])
        else:
            assert variable["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            environment[variable["name"]] = namespace
    for name in [name for name in os.environ if name.startswith("EXPERIO_SSO_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


async def expect_examples_ready(env: OperatorEnv) -> None:
    """Wait until the settings and every example client are Ready, then check what they made."""
    await env.wait_condition("experioauthsettings", EXAMPLE_SETTINGS, timeout=READY_TIMEOUT_SECONDS)
    for name in EXAMPLE_CLIENTS:
        await env.wait_condition("ssoclient", name, timeout=READY_TIMEOUT_SECONDS)

    # Initial setup ran with the setup secret and the operator created the API key Secret.
    assert await env.read_secret("propelauth-api-key", "apiKey")

    for name, secret in (
        ("contoso", "REPLACE-WITH-THE-ENTRA-CLIENT-SECRET"),
        ("fabrikam", "REPLACE-WITH-THE-OKTA-CLIENT-SECRET"),
        ("northwind", "REPLACE-WITH-THE-OIDC-CLIENT-SECRET"),
    ):
        body = await env.get("ssoclient", name)
        assert body is not None
        customer_id = body["status"]["customerId"]
        assert env.sidecar_client(customer_id) is not None, name
        assert env.emulator.secret_matches(customer_id, secret), name

    async def rendered_configmap() -> dict[str, Any] | None:
        configmap = await env.get("configmap", "experio-auth-settings")
        data = (configmap or {}).get("data") or {}
        routes = data.get("sso-routes.json", "")
        return configmap if all(name in routes for name in EXAMPLE_CLIENTS) else None

    configmap = await wait_for(rendered_configmap, description="routing table of 3 clients")
    assert configmap["data"]["USE_PROPELAUTH"] == "True"
    assert configmap["data"]["PROPELAUTH_AUTH_URL"] == env.emulator.url

    # The operator posted an event, so it may create Events.
    events = json.loads(await env.kubectl("get", "events", "-o", "json"))
    reasons = {event["reason"] for event in events["items"]}
    assert "InitialSetupDone" in reasons


async def expect_liveness(operator: OperatorProcess) -> None:
    url = f"http://127.0.0.1:{operator.liveness_port}/healthz"

    async def healthy() -> bool:
        async with httpx.AsyncClient(timeout=2.0) as client:
            try:
                response = await client.get(url)
            except httpx.TransportError:
                return False
        return response.status_code == 200

    await wait_for(healthy, description=f"liveness endpoint {url}")


def permission_problems(log: str) -> list[str]:
    """Return the operator's log messages that mention a refused request.

    Namespaces left Terminating by earlier tests (there is no controller-manager to finish
    deleting them) refuse new objects with 403; requests about them are not RBAC problems.
    """
    terminating = set(re.findall(r"in namespace (\S+) because it is being terminated", log))
    problems = []
    for line in log.splitlines():
        if any(f"/namespaces/{ns}/" in line or f" {ns}/" in line for ns in terminating):
            continue
        if "being terminated" in line:
            continue
        if re.search(r"forbidden|permission|\b403\b", line, re.IGNORECASE):
            try:
                message = str(json.loads(line).get("message", line))
            except ValueError:
                message = line
            problems.append(message)
    return problems


def json_log_lines(log: str) -> list[dict[str, Any]]:
    """Parse the operator's log as JSON lines and fail on any line that is not JSON."""
    records = []
    for line in log.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"log line is not JSON: {line[:200]}") from None
    return records


def resident_memory_mib(operator: OperatorProcess) -> float:
    """Return the operator process's resident memory (VmRSS, Linux only), in MiB."""
    assert operator.process is not None
    status = Path(f"/proc/{operator.process.pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) / 1024


async def can_i(cluster: ControlPlane, kubeconfig: Path, *request: str) -> bool:
    code, output = await kubectl_as(cluster, "auth", "can-i", *request, kubeconfig=kubeconfig)
    assert output in {"yes", "no"} or output.startswith(("yes", "no")), output
    return code == 0


# --- tests -----------------------------------------------------------------------------------


async def test_cluster_wide_install_reconciles_examples(
    operator_env: OperatorEnv, kubectl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = operator_env
    install = render(kubectl, CLUSTER_WIDE_DIR)
    await apply_server_side(env.cluster, without(install, "CustomResourceDefinition", "Deployment"))
    token = env.cluster.service_account_kubeconfig(
        SYSTEM_NAMESPACE, OPERATOR_NAME, path=env.tmp_path / "operator.kubeconfig"
    )
    environment = use_deployment_environment(
        monkeypatch, find(install, "Deployment"), SYSTEM_NAMESPACE
    )
    assert "EXPERIO_SSO_NAMESPACE" not in environment
    await env.apply(*prepared_examples(kubectl, env, env.tmp_path / "examples"))

    operator = await env.start_operator(namespace=None, kubeconfig=token)
    await expect_examples_ready(env)
    await expect_liveness(operator)

    print(f"operator resident memory: {resident_memory_mib(operator):.0f} MiB")
    log = operator.log()
    assert json_log_lines(log)
    assert permission_problems(log) == []


async def test_cluster_wide_install_refuses_other_requests(
    operator_env: OperatorEnv, kubectl: Path
) -> None:
    env = operator_env
    install = render(kubectl, CLUSTER_WIDE_DIR)
    await apply_server_side(env.cluster, without(install, "CustomResourceDefinition", "Deployment"))
    token = env.cluster.service_account_kubeconfig(
        SYSTEM_NAMESPACE, OPERATOR_NAME, path=env.tmp_path / "operator.kubeconfig"
    )
    await env.create_secret("unrelated", {"value": "kept"})
    namespace = env.namespace
    cluster = env.cluster

    for request in (
        ("watch", "secrets", "-n", namespace),
        ("create", "secrets", "-n", namespace),
        ("patch", "ssoclients.auth.experio.cloud/status", "-n", namespace),
        ("list", "experioauthsettings.auth.experio.cloud", "--all-namespaces"),
        ("create", "events", "-n", namespace),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ):
        assert await can_i(cluster, token, *request), request
    for request in (
        ("list", "pods", "-n", namespace),
        ("delete", "secrets", "-n", namespace),
        ("update", "secrets", "-n", namespace),
        ("delete", "ssoclients.auth.experio.cloud", "-n", namespace),
        ("create", "ssoclients.auth.experio.cloud", "-n", namespace),
        ("update", "ssoclients.auth.experio.cloud", "-n", namespace),
        ("list", "configmaps", "-n", namespace),
        ("delete", "configmaps", "-n", namespace),
        ("list", "namespaces"),
        ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("get", "nodes"),
    ):
        assert not await can_i(cluster, token, *request), request

    code, output = await kubectl_as(cluster, "get", "pods", "-n", namespace, kubeconfig=token)
    assert code != 0
    assert "forbidden" in output.lower()
    code, output = await kubectl_as(
        cluster, "delete", "secret", "unrelated", "-n", namespace, kubeconfig=token
    )
    assert code != 0
    assert "forbidden" in output.lower()
    assert await env.read_secret("unrelated", "value") == "kept"


async def start_namespaced_operator(
    env: OperatorEnv, kubectl: Path, monkeypatch: pytest.MonkeyPatch
) -> OperatorProcess:
    """Install the namespaced overlay's RBAC, apply the examples, start the operator."""
    install = render_in_namespace(
        kubectl, [NAMESPACED_DIR], env.namespace, env.tmp_path / "install"
    )
    assert not select(install, "ClusterRole")
    await env.apply(*without(install, "Deployment"))
    token = env.cluster.service_account_kubeconfig(
        env.namespace, OPERATOR_NAME, path=env.tmp_path / "operator.kubeconfig"
    )
    environment = use_deployment_environment(
        monkeypatch, find(install, "Deployment"), env.namespace
    )
    assert environment["EXPERIO_SSO_NAMESPACE"] == env.namespace
    await env.apply(*prepared_examples(kubectl, env, env.tmp_path / "examples"))
    return await env.start_operator(kubeconfig=token)


async def test_namespaced_install_reconciles_examples(
    operator_env: OperatorEnv, kubectl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = operator_env
    operator = await start_namespaced_operator(env, kubectl, monkeypatch)

    await expect_examples_ready(env)
    await expect_liveness(operator)

    print(f"operator resident memory: {resident_memory_mib(operator):.0f} MiB")
    assert json_log_lines(operator.log())


async def test_namespaced_install_sees_changes_at_once(
    operator_env: OperatorEnv, kubectl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = operator_env
    operator = await start_namespaced_operator(env, kubectl, monkeypatch)
    await expect_examples_ready(env)

    await env.kubectl(
        "patch",
        "ssoclient",
        "contoso",
        "--type=merge",
        "-p",
        '{"spec":{"displayName":"Contoso Ltd"}}',
    )

    async def renamed() -> bool:
        body = await env.get("ssoclient", "contoso")
        assert body is not None
        client = env.sidecar_client(body["status"]["customerId"])
        return client is not None and client["displayName"] == "Contoso Ltd"

    await wait_for(renamed, timeout=CHANGE_TIMEOUT_SECONDS, description="renamed sidecar client")
    assert permission_problems(operator.log()) == []


async def test_namespaced_install_refuses_other_namespaces(
    operator_env: OperatorEnv, kubectl: Path
) -> None:
    env = operator_env
    install = render_in_namespace(
        kubectl, [NAMESPACED_DIR], env.namespace, env.tmp_path / "install"
    )
    await env.apply(*without(install, "Deployment"))
    token = env.cluster.service_account_kubeconfig(
        env.namespace, OPERATOR_NAME, path=env.tmp_path / "operator.kubeconfig"
    )
    namespace = env.namespace
    cluster = env.cluster

    for request in (
        ("watch", "ssoclients.auth.experio.cloud", "-n", namespace),
        ("patch", "experioauthsettings.auth.experio.cloud/status", "-n", namespace),
        ("create", "secrets", "-n", namespace),
        ("create", "events", "-n", namespace),
    ):
        assert await can_i(cluster, token, *request), request
    for request in (
        ("list", "ssoclients.auth.experio.cloud", "--all-namespaces"),
        ("list", "ssoclients.auth.experio.cloud", "-n", "default"),
        ("get", "secrets", "-n", "default"),
        ("list", "pods", "-n", namespace),
        ("delete", "secrets", "-n", namespace),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("list", "namespaces"),
    ):
        assert not await can_i(cluster, token, *request), request

    code, output = await kubectl_as(cluster, "get", "secrets", "-n", "default", kubeconfig=token)
    assert code != 0
    assert "forbidden" in output.lower()


async def test_examples_pass_admission(operator_env: OperatorEnv, kubectl: Path) -> None:
    env = operator_env
    examples = without(
        render_in_namespace(kubectl, [EXAMPLES_DIR], env.namespace, env.tmp_path / "examples"),
        "Namespace",
    )

    output = await env.kubectl("apply", "--dry-run=server", "-f", "-", input=to_yaml(examples))

    for name in EXAMPLE_CLIENTS:
        assert f"ssoclient.auth.experio.cloud/{name} created (server dry run)" in output
    assert "experioauthsettings.auth.experio.cloud/experio created (server dry run)" in output
