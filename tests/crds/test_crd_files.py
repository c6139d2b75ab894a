"""Offline checks of the CRD files: names, printer columns, defaults and schema hygiene.

These read the YAML only. What the API server makes of it is tested in test_admission.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.crds.crd_files import (
    CRDS_DIR,
    GROUP,
    VERSION,
    Schema,
    listed_crd_files,
    load_crds,
    root_schema,
    served_version,
    walk_schema,
)

KINDS = ["ExperioAuthSettings", "SSOClient"]
READY = '.status.conditions[?(@.type=="Ready")]'

# (name, jsonPath, priority): priority 1 columns appear only with `kubectl get -o wide`.
PRINTER_COLUMNS = {
    "ExperioAuthSettings": [
        ("Login Mode", ".status.effectiveLoginMode", 0),
        ("Ready", f"{READY}.status", 0),
        ("Reason", f"{READY}.reason", 0),
        ("Requested Mode", ".status.loginMode", 1),
        ("Ready Clients", ".status.readyClients", 1),
        ("Message", f"{READY}.message", 1),
        ("Age", ".metadata.creationTimestamp", 0),
    ],
    "SSOClient": [
        ("Display Name", ".spec.displayName", 0),
        ("Domains", ".status.domains", 0),
        ("IdP", ".spec.identityProvider.type", 0),
        ("Active", ".spec.active", 0),
        ("Ready", f"{READY}.status", 0),
        ("Reason", f"{READY}.reason", 0),
        ("Customer ID", ".status.customerId", 0),
        ("Message", f"{READY}.message", 1),
        ("Redirect URL", ".status.redirectUrl", 1),
        ("Age", ".metadata.creationTimestamp", 0),
    ],
}

NAMES = {
    "ExperioAuthSettings": ("experioauthsettings", "experioauthsettings", ["eas"]),
    "SSOClient": ("ssoclients", "ssoclient", ["sso"]),
}

DEFAULTS = {
    "ExperioAuthSettings": {
        "spec.useSSO": False,
        "spec.allowHybridLogin": False,
        "spec.ssoUsersActiveByDefault": True,
        "spec.lockoutProtection": True,
        "spec.sidecar": {},
        "spec.sidecar.url": "http://propelauth:2884",
        "spec.sidecar.apiKeySecretRef": {"name": "propelauth-api-key", "key": "apiKey"},
        "spec.sidecar.apiKeySecretRef.key": "apiKey",
    },
    "SSOClient": {
        "spec.active": True,
        "spec.identityProvider.usesPkce": False,
        "spec.identityProvider.clientSecretRef.key": "clientSecret",
        "spec.deletionPolicy": "Delete",
    },
}

ENUMS = {
    "ExperioAuthSettings": {
        "status.loginMode": ["PasswordOnly", "SSOOnly", "Hybrid"],
        "status.effectiveLoginMode": ["PasswordOnly", "SSOOnly", "Hybrid"],
        "status.conditions[*].status": ["True", "False", "Unknown"],
    },
    "SSOClient": {
        "spec.identityProvider.type": ["MicrosoftEntra", "Okta", "Generic"],
        "spec.deletionPolicy": ["Delete", "Orphan"],
        "status.conditions[*].status": ["True", "False", "Unknown"],
    },
}

# Status fields as the operator writes them: (type, format). Anything else would be pruned.
STATUS_FIELDS: dict[str, dict[str, tuple[str, str | None]]] = {
    "ExperioAuthSettings": {
        "observedGeneration": ("integer", "int64"),
        "loginMode": ("string", None),
        "effectiveLoginMode": ("string", None),
        "readyClients": ("integer", "int32"),
        "configMapName": ("string", None),
        "conditions": ("array", None),
    },
    "SSOClient": {
        "observedGeneration": ("integer", "int64"),
        "customerId": ("string", None),
        "redirectUrl": ("string", None),
        "allowAllDomains": ("boolean", None),
        "domains": ("string", None),
        "lastSyncTime": ("string", "date-time"),
        "appliedClientSecret": ("object", None),
        "routed": ("boolean", None),
        "conditions": ("array", None),
    },
}


@pytest.fixture(scope="module")
def crds() -> dict[str, Schema]:
    return load_crds()


def schema_nodes(crd: Schema) -> dict[str, Schema]:
    return dict(walk_schema(root_schema(crd)))


def test_kustomization_lists_every_crd_file() -> None:
    listed = sorted(path.name for path in listed_crd_files())
    on_disk = sorted(
        path.name for path in CRDS_DIR.glob("*.yaml") if path.name != "kustomization.yaml"
    )

    assert listed == on_disk
    assert listed == [
        "auth.experio.cloud_experioauthsettings.yaml",
        "auth.experio.cloud_ssoclients.yaml",
    ]


def test_files_hold_both_kinds(crds: dict[str, Schema]) -> None:
    assert sorted(crds) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_names_scope_and_version(crds: dict[str, Schema], kind: str) -> None:
    crd = crds[kind]
    plural, singular, short_names = NAMES[kind]
    names = crd["spec"]["names"]

    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
    assert crd["spec"]["group"] == GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert names["plural"] == plural
    assert names["singular"] == singular
    assert names["shortNames"] == short_names
    assert names["categories"] == ["experio"]
    assert [version["name"] for version in crd["spec"]["versions"]] == [VERSION]
    assert served_version(crd)["served"] is True
    assert served_version(crd)["storage"] is True
    assert served_version(crd)["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns(crds: dict[str, Schema], kind: str) -> None:
    columns = served_version(crds[kind])["additionalPrinterColumns"]
    summary = [
        (column["name"], column["jsonPath"], column.get("priority", 0)) for column in columns
    ]

    assert summary == PRINTER_COLUMNS[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_have_types(crds: dict[str, Schema], kind: str) -> None:
    for column in served_version(crds[kind])["additionalPrinterColumns"]:
        assert column["type"] in {"string", "integer", "boolean", "date"}, column["name"]
        if column["name"] != "Age":
            assert column.get("description"), f"column {column['name']} has no description"


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_has_description(crds: dict[str, Schema], kind: str) -> None:
    # The API server rejects anything but `type` on the root's metadata.
    undescribed = [
        path
        for path, node in schema_nodes(crds[kind]).items()
        if path != "metadata" and not node.get("description", "").strip()
    ]

    assert undescribed == []


@pytest.mark.parametrize("kind", KINDS)
def test_defaults(crds: dict[str, Schema], kind: str) -> None:
    defaults = {
        path: node["default"]
        for path, node in schema_nodes(crds[kind]).items()
        if "default" in node
    }

    assert defaults == DEFAULTS[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_descriptions_state_defaults(crds: dict[str, Schema], kind: str) -> None:
    nodes = schema_nodes(crds[kind])
    for path, value in DEFAULTS[kind].items():
        if isinstance(value, dict):
            continue
        text = str(value).lower()
        assert text in nodes[path]["description"].lower(), f"{path} does not name its default"


@pytest.mark.parametrize("kind", KINDS)
def test_enums(crds: dict[str, Schema], kind: str) -> None:
    enums = {
        path: node["enum"] for path, node in schema_nodes(crds[kind]).items() if "enum" in node
    }

    assert enums == ENUMS[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_enum_descriptions_list_allowed_values(crds: dict[str, Schema], kind: str) -> None:
    nodes = schema_nodes(crds[kind])
    for path, allowed in ENUMS[kind].items():
        for value in allowed:
            assert value in nodes[path]["description"], f"{path} does not mention {value}"


@pytest.mark.parametrize("kind", KINDS)
def test_status_fields(crds: dict[str, Schema], kind: str) -> None:
    status = root_schema(crds[kind])["properties"]["status"]["properties"]
    fields = {name: (node["type"], node.get("format")) for name, node in status.items()}

    assert fields == STATUS_FIELDS[kind]


def test_applied_client_secret_records_identity_only(crds: dict[str, Schema]) -> None:
    applied = root_schema(crds["SSOClient"])["properties"]["status"]["properties"][
        "appliedClientSecret"
    ]

    assert sorted(applied["properties"]) == ["key", "name", "resourceVersion", "uid"]
    assert all(node["type"] == "string" for node in applied["properties"].values())


@pytest.mark.parametrize("kind", KINDS)
def test_conditions_are_standard_list_map(crds: dict[str, Schema], kind: str) -> None:
    conditions = root_schema(crds[kind])["properties"]["status"]["properties"]["conditions"]
    item = conditions["items"]

    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert sorted(item["required"]) == [
        "lastTransitionTime",
        "message",
        "reason",
        "status",
        "type",
    ]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert item["properties"]["observedGeneration"]["format"] == "int64"
    assert item["properties"]["reason"]["pattern"] == "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def test_conditions_schema_is_shared(crds: dict[str, Schema]) -> None:
    def conditions(kind: str) -> Any:
        return root_schema(crds[kind])["properties"]["status"]["properties"]["conditions"]

    settings = conditions("ExperioAuthSettings")
    client = conditions("SSOClient")

    assert settings["items"] == client["items"]


@pytest.mark.parametrize("kind", KINDS)
def test_spec_strings_and_lists_bounded(crds: dict[str, Schema], kind: str) -> None:
    # The API server estimates the cost of each CEL rule from these bounds. It rejects a CRD
    # whose rules could exceed the budget, so every list and string in spec gets a bound.
    unbounded = []
    for path, node in schema_nodes(crds[kind]).items():
        if not path.startswith("spec"):
            continue
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(path)
        if node.get("type") == "string" and "enum" not in node and "maxLength" not in node:
            unbounded.append(path)

    assert unbounded == []


@pytest.mark.parametrize("kind", KINDS)
def test_spec_lists_are_sets(crds: dict[str, Schema], kind: str) -> None:
    for path, node in schema_nodes(crds[kind]).items():
        if path.startswith("spec") and node.get("type") == "array":
            assert node.get("x-kubernetes-list-type") == "set", path


@pytest.mark.parametrize("kind", KINDS)
def test_validation_messages_name_field(crds: dict[str, Schema], kind: str) -> None:
    for path, node in schema_nodes(crds[kind]).items():
        for rule in node.get("x-kubernetes-validations", []):
            field = path.replace("[*]", "") + rule.get("fieldPath", "")
            field = field.removeprefix(".")

            assert rule["message"].startswith(f"{field} "), (path, rule["message"])
