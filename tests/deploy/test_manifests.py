"""Offline checks of the kustomizations under deploy/: they render, and what they render is safe.

Nothing here talks to an API server, because kubectl only renders (``kubectl kustomize``).
The install tests (test_install.py) apply the same output to a real control plane.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from experio_sso.config import load_config
from tests.deploy.manifests import (
    CLUSTER_WIDE_DIR,
    EXAMPLES_DIR,
    EXAMPLES_NAMESPACE,
    NAMESPACED_DIR,
    OPERATOR_NAME,
    SYSTEM_NAMESPACE,
    Manifest,
    find,
    kustomization_dirs,
    operator_container,
    render,
    select,
)
from tests.support.control_plane import REPOSITORY_ROOT

CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
}
INSTALLS = {
    "cluster-wide": (CLUSTER_WIDE_DIR, SYSTEM_NAMESPACE),
    "namespaced": (NAMESPACED_DIR, EXAMPLES_NAMESPACE),
}
IMAGE = "ghcr.io/experio/experio-sso-operator:0.1.0"
CRD_RULE = {
    "apiGroups": ["apiextensions.k8s.io"],
    "resources": ["customresourcedefinitions"],
    "verbs": ["get", "list", "watch"],
}
# Everything the operator may do to namespaced objects, as (API group, resource) -> verbs.
EXPECTED_NAMESPACED_PERMISSIONS = {
    ("auth.experio.cloud", "experioauthsettings"): {"get", "list", "watch", "patch"},
    ("auth.experio.cloud", "ssoclients"): {"get", "list", "watch", "patch"},
    ("auth.experio.cloud", "experioauthsettings/status"): {"patch"},
    ("auth.experio.cloud", "ssoclients/status"): {"patch"},
    ("", "secrets"): {"get", "list", "watch", "create", "patch"},
    ("", "configmaps"): {"get", "create", "patch"},
    ("", "events"): {"create"},
}


def permissions(rules: list[Manifest]) -> dict[tuple[str, str], set[str]]:
    """Flatten RBAC rules to (API group, resource) -> verbs."""
    flat: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert "resourceNames" not in rule, rule
        assert "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                flat.setdefault((group, resource), set()).update(rule["verbs"])
    return flat


@pytest.fixture(scope="module", params=sorted(INSTALLS))
def install(request: pytest.FixtureRequest, kubectl: Path) -> tuple[str, list[Manifest]]:
    """The rendered output of one install variant, with the namespace its objects go to."""
    directory, namespace = INSTALLS[request.param]
    return namespace, render(kubectl, directory)


@pytest.fixture(scope="module")
def deployment(install: tuple[str, list[Manifest]]) -> Manifest:
    return find(install[1], "Deployment", OPERATOR_NAME)


@pytest.fixture(scope="module")
def container(deployment: Manifest) -> Manifest:
    return operator_container(deployment)


def container_environment(container: Manifest, namespace: str) -> dict[str, str]:
    """Return the container's variables, with downward-API references resolved for ``namespace``."""
    environment: dict[str, str] = {}
    for variable in container.get("env") or []:
        if "value" in variable:
            environment[variable["name"]] = str(variable["value"])
            continue
        field_path = variable["valueFrom"]["fieldRef"]["fieldPath"]
        assert field_path == "metadata.namespace", variable
        environment[variable["name"]] = namespace
    return environment


# --- rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "directory", kustomization_dirs(), ids=lambda path: str(path.relative_to(REPOSITORY_ROOT))
)
def test_kustomization_renders(kubectl: Path, directory: Path) -> None:
    manifests = render(kubectl, directory)

    assert manifests
    for manifest in manifests:
        assert manifest.get("apiVersion"), manifest
        assert manifest.get("kind"), manifest
        assert manifest.get("metadata", {}).get("name"), manifest


def test_kustomization_discovery_finds_installs() -> None:
    found = {path.relative_to(REPOSITORY_ROOT).as_posix() for path in kustomization_dirs()}

    expected = {"deploy", "deploy/base", "deploy/overlays/namespaced", "deploy/examples"}
    assert expected <= found


def test_cluster_wide_install_contents(kubectl: Path) -> None:
    manifests = render(kubectl, CLUSTER_WIDE_DIR)

    kinds = sorted(manifest["kind"] for manifest in manifests)
    assert kinds == sorted(
        [
            "Namespace",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
        ]
    )
    for manifest in manifests:
        if manifest["kind"] not in CLUSTER_SCOPED_KINDS:
            assert manifest["metadata"]["namespace"] == SYSTEM_NAMESPACE, manifest["kind"]
    namespace = find(manifests, "Namespace")
    assert namespace["metadata"]["name"] == SYSTEM_NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_cluster_wide_install_ships_crds_unchanged(kubectl: Path) -> None:
    installed = {
        crd["metadata"]["name"]: crd
        for crd in select(render(kubectl, CLUSTER_WIDE_DIR), "CustomResourceDefinition")
    }
    source = {
        crd["metadata"]["name"]: crd
        for crd in select(render(kubectl, REPOSITORY_ROOT / "crds"), "CustomResourceDefinition")
    }

    assert installed == source


def test_namespaced_install_is_cluster_scope_free(kubectl: Path) -> None:
    manifests = render(kubectl, NAMESPACED_DIR)

    kinds = sorted(manifest["kind"] for manifest in manifests)
    assert kinds == sorted(["ServiceAccount", "Role", "RoleBinding", "Deployment"])
    for manifest in manifests:
        assert manifest["metadata"]["namespace"] == EXAMPLES_NAMESPACE, manifest["kind"]


# --- RBAC ------------------------------------------------------------------------------------


def test_cluster_role_grants_exactly_what_operator_uses(kubectl: Path) -> None:
    manifests = render(kubectl, CLUSTER_WIDE_DIR)
    role = find(manifests, "ClusterRole", OPERATOR_NAME)

    granted = permissions(role["rules"])
    expected = {
        **EXPECTED_NAMESPACED_PERMISSIONS,
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
    }
    assert granted == expected


def test_cluster_role_binding_names_service_account(kubectl: Path) -> None:
    manifests = render(kubectl, CLUSTER_WIDE_DIR)
    binding = find(manifests, "ClusterRoleBinding", OPERATOR_NAME)

    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": OPERATOR_NAME,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": SYSTEM_NAMESPACE}
    ]


def test_namespaced_role_matches_cluster_role(kubectl: Path) -> None:
    cluster_role = find(render(kubectl, CLUSTER_WIDE_DIR), "ClusterRole", OPERATOR_NAME)
    namespaced = render(kubectl, NAMESPACED_DIR)
    role = find(namespaced, "Role", OPERATOR_NAME)

    cluster_rules = [rule for rule in cluster_role["rules"] if rule != CRD_RULE]
    assert role["rules"] == cluster_rules
    assert permissions(role["rules"]) == EXPECTED_NAMESPACED_PERMISSIONS


def test_namespaced_role_binding_names_service_account(kubectl: Path) -> None:
    binding = find(render(kubectl, NAMESPACED_DIR), "RoleBinding", OPERATOR_NAME)

    assert binding["roleRef"]["kind"] == "Role"
    assert binding["roleRef"]["name"] == OPERATOR_NAME
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": EXAMPLES_NAMESPACE}
    ]


# --- Deployment --------------------------------------------------------------------------------


def test_deployment_runs_one_replica_with_recreate(deployment: Manifest) -> None:
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_deployment_uses_service_account(
    install: tuple[str, list[Manifest]], deployment: Manifest
) -> None:
    pod = deployment["spec"]["template"]["spec"]

    assert pod["serviceAccountName"] == OPERATOR_NAME
    assert find(install[1], "ServiceAccount", OPERATOR_NAME)
    assert pod.get("automountServiceAccountToken", True) is True


def test_deployment_selector_matches_pod_labels(deployment: Manifest) -> None:
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    assert selector
    assert selector.items() <= labels.items()


def test_deployment_image_is_placeholder(container: Manifest) -> None:
    assert container["image"] == IMAGE


def test_pod_runs_as_non_root(deployment: Manifest, container: Manifest) -> None:
    pod = deployment["spec"]["template"]["spec"]
    pod_context = pod["securityContext"]
    container_context = container["securityContext"]

    assert pod_context["runAsNonRoot"] is True
    assert pod_context["runAsUser"] == 65532
    assert pod_context["runAsGroup"] == 65532
    assert container_context.get("runAsNonRoot", True) is True
    assert container_context.get("runAsUser", 65532) == 65532


def test_container_is_locked_down(deployment: Manifest, container: Manifest) -> None:
    pod = deployment["spec"]["template"]["spec"]
    context = container["securityContext"]

    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    assert context.get("privileged", False) is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context.get("seccompProfile", {"type": "RuntimeDefault"}) == {"type": "RuntimeDefault"}
    for host_field in ("hostNetwork", "hostPID", "hostIPC"):
        assert pod.get(host_field, False) is False, host_field
    assert all("hostPath" not in volume for volume in pod.get("volumes") or [])


def test_container_has_writable_tmp(deployment: Manifest, container: Manifest) -> None:
    volumes = {
        volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]
    }
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}

    assert "/tmp" in mounts
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_container_sets_requests_and_limits(container: Manifest) -> None:
    resources = container["resources"]

    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind


def test_liveness_probe_reaches_operator_endpoint(
    install: tuple[str, list[Manifest]], container: Manifest
) -> None:
    config = load_config(container_environment(container, install[0]))
    endpoint = urlparse(config.liveness_url)
    probe = container["livenessProbe"]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert endpoint.hostname == "0.0.0.0"
    assert probe["path"] == endpoint.path
    assert ports[probe["port"]] == endpoint.port
    assert probe.get("scheme", "HTTP") == "HTTP"


def test_environment_is_valid_configuration(
    install: tuple[str, list[Manifest]], container: Manifest
) -> None:
    namespace, _ = install
    environment = container_environment(container, namespace)
    config = load_config(environment)

    assert all(name.startswith("EXPERIO_SSO_") for name in environment)
    assert config.log_format == "json"
    assert config.log_level == "INFO"
    assert config.peering is None
    expected_namespace = None if namespace == SYSTEM_NAMESPACE else namespace
    assert config.namespace == expected_namespace


def test_container_uses_image_entrypoint(container: Manifest) -> None:
    # The image's ENTRYPOINT is `experio-sso run`, and a command here would replace it.
    assert "command" not in container
    assert "args" not in container


# --- examples ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def examples(kubectl: Path) -> list[Manifest]:
    return render(kubectl, EXAMPLES_DIR)


def test_examples_live_in_experio_namespace(examples: list[Manifest]) -> None:
    assert find(examples, "Namespace")["metadata"]["name"] == EXAMPLES_NAMESPACE
    for manifest in examples:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == EXAMPLES_NAMESPACE, manifest["kind"]


def test_examples_cover_every_identity_provider(examples: list[Manifest]) -> None:
    types = sorted(
        client["spec"]["identityProvider"]["type"] for client in select(examples, "SSOClient")
    )

    assert types == ["Generic", "MicrosoftEntra", "Okta"]
    assert len(select(examples, "ExperioAuthSettings")) == 1


def test_examples_reference_existing_secret_keys(examples: list[Manifest]) -> None:
    secrets = {secret["metadata"]["name"]: secret for secret in select(examples, "Secret")}
    settings = find(examples, "ExperioAuthSettings")
    references = [settings["spec"]["sidecar"]["setupSecretRef"]]
    for client in select(examples, "SSOClient"):
        reference = client["spec"]["identityProvider"]["clientSecretRef"]
        references.append({"key": "clientSecret", **reference})

    for reference in references:
        assert reference["name"] in secrets, reference
        assert reference["key"] in secrets[reference["name"]]["stringData"], reference


def test_example_secrets_are_marked_placeholders(examples: list[Manifest]) -> None:
    for secret in select(examples, "Secret"):
        for key, value in secret["stringData"].items():
            assert value.startswith("REPLACE-WITH-"), f"{secret['metadata']['name']}/{key}"


def test_example_setup_placeholder_is_long_enough(examples: list[Manifest]) -> None:
    # The operator rejects a setup secret shorter than 16 characters before calling the sidecar.
    setup = find(examples, "Secret", "propelauth-setup")

    assert len(setup["stringData"]["setupSecret"]) >= 16


def test_example_files_parse(kubectl: Path) -> None:
    listed = yaml.safe_load((EXAMPLES_DIR / "kustomization.yaml").read_text())["resources"]
    present = sorted(path.name for path in EXAMPLES_DIR.glob("*.yaml"))

    assert sorted([*listed, "kustomization.yaml"]) == present
