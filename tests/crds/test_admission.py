"""Admission of ExperioAuthSettings and SSOClient manifests by a real kube-apiserver.

Every invalid manifest in the corpus below must be rejected by ``kubectl apply`` with an error
that names the offending field. Valid manifests must be accepted and come back with the
schema's defaults filled in. Each invalid case is a valid base manifest with one fault, because
the API server skips the CEL rules once a schema check has failed.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.crds.crd_files import API_VERSION, SETTINGS_RESOURCE, SSO_CLIENT_RESOURCE
from tests.support.control_plane import ControlPlane

pytestmark = pytest.mark.cluster

Manifest = dict[str, Any]


class _Delete:
    """Marker for a field that a case removes from the base manifest."""


DELETE = _Delete()

ENTRA_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
NOW = "2026-01-01T00:00:00Z"


def settings_manifest(name: str = "experio") -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "ExperioAuthSettings",
        "metadata": {"name": name},
        "spec": {"publicUrl": "https://experio.example.com"},
    }


def sso_client_manifest(identity_provider: dict[str, Any], name: str = "acme") -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "SSOClient",
        "metadata": {"name": name},
        "spec": {
            "displayName": "Acme Corporation",
            "emailDomains": ["acme.com", "acme.io"],
            "identityProvider": {
                "clientId": "0f3c2d1e-acme",
                "clientSecretRef": {"name": "acme-oidc"},
                **identity_provider,
            },
        },
    }


def entra_client() -> Manifest:
    return sso_client_manifest({"type": "MicrosoftEntra", "tenantId": ENTRA_TENANT_ID})


def okta_client() -> Manifest:
    return sso_client_manifest({"type": "Okta", "ssoDomain": "dev-12345.okta.com"})


def generic_client() -> Manifest:
    return sso_client_manifest(
        {
            "type": "Generic",
            "authUrl": "https://idp.example.com/oauth2/authorize",
            "tokenUrl": "https://idp.example.com/oauth2/token",
            "userinfoUrl": "https://idp.example.com/oauth2/userinfo",
        }
    )


def set_path(manifest: Manifest, path: str, value: Any) -> None:
    """Set or, with DELETE, remove the field at a dotted path such as ``spec.sidecar.url``."""
    *parents, leaf = path.split(".")
    node = manifest
    for name in parents:
        node = node.setdefault(name, {})
    if isinstance(value, _Delete):
        del node[leaf]
    else:
        node[leaf] = value


@dataclass(frozen=True)
class Case:
    """One invalid manifest: a base with edits, and the error that the API server must return."""

    base: Callable[[], Manifest]
    edits: dict[str, Any]
    field: str
    message: str

    def manifest(self) -> Manifest:
        manifest = self.base()
        for path, value in copy.deepcopy(self.edits).items():
            set_path(manifest, path, value)
        return manifest


def case(
    case_id: str, base: Callable[[], Manifest], edits: dict[str, Any], field: str, message: str
) -> Any:
    return pytest.param(Case(base, edits, field, message), id=case_id)


HTTPS_URL = "must be an https:// URL"
SECRET_NAME = "must be a Secret name"
SECRET_KEY = "must be a Secret data key"
DOMAIN = "must be lowercase DNS names"
SCOPE = "must be non-empty scope tokens"

INVALID_SETTINGS = [
    case("settings has no spec", settings_manifest, {"spec": DELETE}, "spec", "Required value"),
    case(
        "settings has no publicUrl",
        settings_manifest,
        {"spec.publicUrl": DELETE},
        "spec.publicUrl",
        "Required value",
    ),
    case(
        "publicUrl uses plain http",
        settings_manifest,
        {"spec.publicUrl": "http://experio.example.com"},
        "spec.publicUrl",
        HTTPS_URL,
    ),
    case(
        "publicUrl has no scheme",
        settings_manifest,
        {"spec.publicUrl": "experio.example.com"},
        "spec.publicUrl",
        HTTPS_URL,
    ),
    case(
        "publicUrl ends with a slash",
        settings_manifest,
        {"spec.publicUrl": "https://experio.example.com/"},
        "spec.publicUrl",
        "must not end with a slash",
    ),
    case(
        "publicUrl carries a query",
        settings_manifest,
        {"spec.publicUrl": "https://experio.example.com?tenant=a"},
        "spec.publicUrl",
        "must not contain a query",
    ),
    case(
        "publicUrl is a number",
        settings_manifest,
        {"spec.publicUrl": 443},
        "spec.publicUrl",
        "must be of type string",
    ),
    case(
        "useSSO is a string",
        settings_manifest,
        {"spec.useSSO": "yes"},
        "spec.useSSO",
        "must be of type boolean",
    ),
    case(
        "allowHybridLogin is a quoted boolean",
        settings_manifest,
        {"spec.allowHybridLogin": "true"},
        "spec.allowHybridLogin",
        "must be of type boolean",
    ),
    case(
        "ssoUsersActiveByDefault is a number",
        settings_manifest,
        {"spec.ssoUsersActiveByDefault": 1},
        "spec.ssoUsersActiveByDefault",
        "must be of type boolean",
    ),
    case(
        "lockoutProtection is a string",
        settings_manifest,
        {"spec.lockoutProtection": "off"},
        "spec.lockoutProtection",
        "must be of type boolean",
    ),
    case(
        "sidecar url uses ftp",
        settings_manifest,
        {"spec.sidecar.url": "ftp://propelauth:2884"},
        "spec.sidecar.url",
        "must be an http:// or https:// URL",
    ),
    case(
        "sidecar url has no host",
        settings_manifest,
        {"spec.sidecar.url": "propelauth"},
        "spec.sidecar.url",
        "must be an http:// or https:// URL",
    ),
    case(
        "sidecar url carries a fragment",
        settings_manifest,
        {"spec.sidecar.url": "http://propelauth:2884/#api"},
        "spec.sidecar.url",
        "must not contain a query (?) or a fragment (#)",
    ),
    case(
        "sidecar is a string",
        settings_manifest,
        {"spec.sidecar": "http://propelauth:2884"},
        "spec.sidecar",
        "must be of type object",
    ),
    case(
        "apiKeySecretRef has no name",
        settings_manifest,
        {"spec.sidecar.apiKeySecretRef": {"key": "apiKey"}},
        "spec.sidecar.apiKeySecretRef.name",
        "Required value",
    ),
    case(
        "apiKeySecretRef name has uppercase letters",
        settings_manifest,
        {"spec.sidecar.apiKeySecretRef": {"name": "PropelAuth-Key"}},
        "spec.sidecar.apiKeySecretRef.name",
        SECRET_NAME,
    ),
    case(
        "apiKeySecretRef key contains a slash",
        settings_manifest,
        {"spec.sidecar.apiKeySecretRef": {"name": "propelauth-api-key", "key": "api/key"}},
        "spec.sidecar.apiKeySecretRef.key",
        SECRET_KEY,
    ),
    case(
        "setupSecretRef has no key",
        settings_manifest,
        {"spec.sidecar.setupSecretRef": {"name": "propelauth-setup"}},
        "spec.sidecar.setupSecretRef.key",
        "Required value",
    ),
    case(
        "setupSecretRef name is empty",
        settings_manifest,
        {"spec.sidecar.setupSecretRef": {"name": "", "key": "setupSecret"}},
        "spec.sidecar.setupSecretRef.name",
        SECRET_NAME,
    ),
    case(
        "setupSecretRef points at the integration key",
        settings_manifest,
        {"spec.sidecar.setupSecretRef": {"name": "propelauth-api-key", "key": "apiKey"}},
        "spec.sidecar.setupSecretRef",
        "must not point to the same Secret key as spec.sidecar.apiKeySecretRef",
    ),
    case(
        "settings spec has a misspelled field",
        settings_manifest,
        {"spec.useSso": True},
        "spec.useSso",
        "strict decoding error",
    ),
    case(
        "sidecar has an unknown field",
        settings_manifest,
        {"spec.sidecar.apiKey": "pa_123"},
        "spec.sidecar.apiKey",
        "strict decoding error",
    ),
]

INVALID_SSO_CLIENTS = [
    case(
        "client has no displayName",
        entra_client,
        {"spec.displayName": DELETE},
        "spec.displayName",
        "Required value",
    ),
    case(
        "displayName is empty",
        entra_client,
        {"spec.displayName": ""},
        "spec.displayName",
        "must not be empty or blank",
    ),
    case(
        "displayName is only spaces",
        entra_client,
        {"spec.displayName": "   "},
        "spec.displayName",
        "must not be empty or blank",
    ),
    case(
        "displayName is too long",
        entra_client,
        {"spec.displayName": "A" * 257},
        "spec.displayName",
        "Too long",
    ),
    case(
        "email domain has uppercase letters",
        entra_client,
        {"spec.emailDomains": ["Acme.com"]},
        "spec.emailDomains[0]",
        DOMAIN,
    ),
    case(
        "email domain is an email address",
        entra_client,
        {"spec.emailDomains": ["admin@acme.com"]},
        "spec.emailDomains[0]",
        DOMAIN,
    ),
    case(
        "email domain has a leading at sign",
        entra_client,
        {"spec.emailDomains": ["@acme.com"]},
        "spec.emailDomains[0]",
        DOMAIN,
    ),
    case(
        "email domain is a wildcard",
        entra_client,
        {"spec.emailDomains": ["acme.com", "*.acme.com"]},
        "spec.emailDomains[1]",
        DOMAIN,
    ),
    case(
        "email domain is a URL",
        entra_client,
        {"spec.emailDomains": ["https://acme.com"]},
        "spec.emailDomains[0]",
        DOMAIN,
    ),
    case(
        "email domain has a single label",
        entra_client,
        {"spec.emailDomains": ["localhost"]},
        "spec.emailDomains[0]",
        DOMAIN,
    ),
    case(
        "email domain has a trailing dot",
        entra_client,
        {"spec.emailDomains": ["acme.com."]},
        "spec.emailDomains[0]",
        DOMAIN,
    ),
    case(
        "email domain is empty",
        entra_client,
        {"spec.emailDomains": [""]},
        "spec.emailDomains[0]",
        DOMAIN,
    ),
    case(
        "email domain is listed twice",
        entra_client,
        {"spec.emailDomains": ["acme.com", "acme.io", "acme.com"]},
        "spec.emailDomains[2]",
        'Duplicate value: "acme.com"',
    ),
    case(
        "emailDomains is a string",
        entra_client,
        {"spec.emailDomains": "acme.com"},
        "spec.emailDomains",
        "must be of type array",
    ),
    case(
        "emailDomains has too many entries",
        entra_client,
        {"spec.emailDomains": [f"d{index}.acme.com" for index in range(101)]},
        "spec.emailDomains",
        "Too many",
    ),
    case(
        "active is a string",
        entra_client,
        {"spec.active": "false"},
        "spec.active",
        "must be of type boolean",
    ),
    case(
        "client has no identityProvider",
        entra_client,
        {"spec.identityProvider": DELETE},
        "spec.identityProvider",
        "Required value",
    ),
    case(
        "IdP type is unknown",
        entra_client,
        {"spec.identityProvider.type": "Google"},
        "spec.identityProvider.type",
        'Unsupported value: "Google"',
    ),
    case(
        "IdP type is lowercase",
        okta_client,
        {"spec.identityProvider.type": "okta"},
        "spec.identityProvider.type",
        'Unsupported value: "okta"',
    ),
    case(
        "IdP type is missing",
        entra_client,
        {"spec.identityProvider.type": DELETE},
        "spec.identityProvider.type",
        "Required value",
    ),
    case(
        "clientId is missing",
        okta_client,
        {"spec.identityProvider.clientId": DELETE},
        "spec.identityProvider.clientId",
        "Required value",
    ),
    case(
        "clientId is blank",
        generic_client,
        {"spec.identityProvider.clientId": " "},
        "spec.identityProvider.clientId",
        "must not be empty or blank",
    ),
    case(
        "clientSecretRef is missing",
        entra_client,
        {"spec.identityProvider.clientSecretRef": DELETE},
        "spec.identityProvider.clientSecretRef",
        "Required value",
    ),
    case(
        "clientSecretRef has no name",
        entra_client,
        {"spec.identityProvider.clientSecretRef": {"key": "clientSecret"}},
        "spec.identityProvider.clientSecretRef.name",
        "Required value",
    ),
    case(
        "clientSecretRef name has an underscore",
        okta_client,
        {"spec.identityProvider.clientSecretRef.name": "acme_oidc"},
        "spec.identityProvider.clientSecretRef.name",
        SECRET_NAME,
    ),
    case(
        "clientSecretRef name is empty",
        generic_client,
        {"spec.identityProvider.clientSecretRef.name": ""},
        "spec.identityProvider.clientSecretRef.name",
        SECRET_NAME,
    ),
    case(
        "clientSecretRef key has a space",
        entra_client,
        {"spec.identityProvider.clientSecretRef.key": "client secret"},
        "spec.identityProvider.clientSecretRef.key",
        SECRET_KEY,
    ),
    case(
        "client secret is written inline",
        entra_client,
        {"spec.identityProvider.clientSecret": "s3cr3t"},
        "spec.identityProvider.clientSecret",
        "strict decoding error",
    ),
    case(
        "Entra client has no tenantId",
        entra_client,
        {"spec.identityProvider.tenantId": DELETE},
        "spec.identityProvider.tenantId",
        "Required value: spec.identityProvider.tenantId is required when type is MicrosoftEntra",
    ),
    case(
        "Entra tenantId is neither GUID nor domain",
        entra_client,
        {"spec.identityProvider.tenantId": "my tenant"},
        "spec.identityProvider.tenantId",
        "must be a tenant ID GUID",
    ),
    case(
        "Entra client has an ssoDomain",
        entra_client,
        {"spec.identityProvider.ssoDomain": "dev-12345.okta.com"},
        "spec.identityProvider.ssoDomain",
        "Forbidden: spec.identityProvider.ssoDomain is only allowed when type is Okta",
    ),
    case(
        "Entra client has an authUrl",
        entra_client,
        {"spec.identityProvider.authUrl": "https://idp.example.com/authorize"},
        "spec.identityProvider.authUrl",
        "Forbidden: spec.identityProvider.authUrl is only allowed when type is Generic",
    ),
    case(
        "Okta client has no ssoDomain",
        okta_client,
        {"spec.identityProvider.ssoDomain": DELETE},
        "spec.identityProvider.ssoDomain",
        "Required value: spec.identityProvider.ssoDomain is required when type is Okta",
    ),
    case(
        "Okta ssoDomain has a path",
        okta_client,
        {"spec.identityProvider.ssoDomain": "https://dev-12345.okta.com/oauth2/default"},
        "spec.identityProvider.ssoDomain",
        "must be an Okta domain",
    ),
    case(
        "Okta ssoDomain has a port",
        okta_client,
        {"spec.identityProvider.ssoDomain": "dev-12345.okta.com:443"},
        "spec.identityProvider.ssoDomain",
        "must be an Okta domain",
    ),
    case(
        "Okta ssoDomain uses ftp",
        okta_client,
        {"spec.identityProvider.ssoDomain": "ftp://dev-12345.okta.com"},
        "spec.identityProvider.ssoDomain",
        "must be an Okta domain",
    ),
    case(
        "Okta client has a tenantId",
        okta_client,
        {"spec.identityProvider.tenantId": ENTRA_TENANT_ID},
        "spec.identityProvider.tenantId",
        "Forbidden: spec.identityProvider.tenantId is only allowed when type is MicrosoftEntra",
    ),
    case(
        "Okta client has a tokenUrl",
        okta_client,
        {"spec.identityProvider.tokenUrl": "https://dev-12345.okta.com/token"},
        "spec.identityProvider.tokenUrl",
        "Forbidden: spec.identityProvider.tokenUrl is only allowed when type is Generic",
    ),
    case(
        "Generic client has no authUrl",
        generic_client,
        {"spec.identityProvider.authUrl": DELETE},
        "spec.identityProvider.authUrl",
        "Required value: spec.identityProvider.authUrl is required when type is Generic",
    ),
    case(
        "Generic client has no tokenUrl",
        generic_client,
        {"spec.identityProvider.tokenUrl": DELETE},
        "spec.identityProvider.tokenUrl",
        "Required value: spec.identityProvider.tokenUrl is required when type is Generic",
    ),
    case(
        "Generic client has no userinfoUrl",
        generic_client,
        {"spec.identityProvider.userinfoUrl": DELETE},
        "spec.identityProvider.userinfoUrl",
        "Required value: spec.identityProvider.userinfoUrl is required when type is Generic",
    ),
    case(
        "Generic authUrl uses http to a remote host",
        generic_client,
        {"spec.identityProvider.authUrl": "http://idp.example.com/authorize"},
        "spec.identityProvider.authUrl",
        HTTPS_URL,
    ),
    case(
        "Generic tokenUrl is not a URL",
        generic_client,
        {"spec.identityProvider.tokenUrl": "idp.example.com/token"},
        "spec.identityProvider.tokenUrl",
        HTTPS_URL,
    ),
    case(
        "Generic tokenUrl has no host",
        generic_client,
        {"spec.identityProvider.tokenUrl": "https:///token"},
        "spec.identityProvider.tokenUrl",
        HTTPS_URL,
    ),
    case(
        "Generic userinfoUrl uses http to a lookalike of localhost",
        generic_client,
        {"spec.identityProvider.userinfoUrl": "http://localhost.example.com/userinfo"},
        "spec.identityProvider.userinfoUrl",
        HTTPS_URL,
    ),
    case(
        "Generic client has a tenantId",
        generic_client,
        {"spec.identityProvider.tenantId": ENTRA_TENANT_ID},
        "spec.identityProvider.tenantId",
        "Forbidden: spec.identityProvider.tenantId is only allowed when type is MicrosoftEntra",
    ),
    case(
        "Generic client has an ssoDomain",
        generic_client,
        {"spec.identityProvider.ssoDomain": "dev-12345.okta.com"},
        "spec.identityProvider.ssoDomain",
        "Forbidden: spec.identityProvider.ssoDomain is only allowed when type is Okta",
    ),
    case(
        "usesPkce is a string",
        generic_client,
        {"spec.identityProvider.usesPkce": "yes"},
        "spec.identityProvider.usesPkce",
        "must be of type boolean",
    ),
    case(
        "additional scope contains a space",
        okta_client,
        {"spec.additionalScopes": ["groups offline_access"]},
        "spec.additionalScopes[0]",
        SCOPE,
    ),
    case(
        "additional scope is empty",
        okta_client,
        {"spec.additionalScopes": ["groups", ""]},
        "spec.additionalScopes[1]",
        SCOPE,
    ),
    case(
        "additional scope is listed twice",
        okta_client,
        {"spec.additionalScopes": ["groups", "groups"]},
        "spec.additionalScopes[1]",
        'Duplicate value: "groups"',
    ),
    case(
        "customerId is empty",
        entra_client,
        {"spec.customerId": ""},
        "spec.customerId",
        "must be non-empty printable ASCII without spaces",
    ),
    case(
        "customerId contains a space",
        entra_client,
        {"spec.customerId": "acme com"},
        "spec.customerId",
        "must be non-empty printable ASCII without spaces",
    ),
    case(
        "deletionPolicy is Retain",
        entra_client,
        {"spec.deletionPolicy": "Retain"},
        "spec.deletionPolicy",
        'Unsupported value: "Retain"',
    ),
    case(
        "client spec has a misspelled field",
        entra_client,
        {"spec.emailDomain": "acme.com"},
        "spec.emailDomain",
        "strict decoding error",
    ),
]


def apply(
    cluster: ControlPlane, namespace: str, manifest: Manifest
) -> subprocess.CompletedProcess[str]:
    """Run ``kubectl apply`` with server-side field validation, so unknown fields are errors."""
    return cluster.kubectl(
        "apply",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(manifest),
        check=False,
    )


def get(cluster: ControlPlane, namespace: str, resource: str, name: str) -> Manifest:
    result = cluster.kubectl("get", resource, name, "-n", namespace, "-o", "json")
    return dict(json.loads(result.stdout))


def resource_of(manifest: Manifest) -> str:
    return SETTINGS_RESOURCE if manifest["kind"] == "ExperioAuthSettings" else SSO_CLIENT_RESOURCE


def patch_status(
    cluster: ControlPlane, namespace: str, resource: str, name: str, status: dict[str, Any]
) -> None:
    """Write status through the status subresource, as the operator does."""
    cluster.kubectl(
        "patch",
        resource,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def assert_rejected(result: subprocess.CompletedProcess[str], field: str, message: str) -> None:
    """Assert that kubectl failed with an error line that names ``field`` and contains ``message``.

    The API server writes one error per line, as ``<field>: <type>: <detail>``, or as
    ``unknown field "<field>"`` for a field that the schema does not have.
    """
    assert result.returncode != 0, f"accepted: {result.stdout}"
    naming_lines = [
        line
        for line in result.stderr.splitlines()
        if f"{field}: " in line or f'unknown field "{field}"' in line
    ]
    assert naming_lines, f"no error names {field}: {result.stderr}"
    assert any(message in line for line in naming_lines), result.stderr


def test_invalid_corpus_is_large_enough() -> None:
    assert len(INVALID_SETTINGS) + len(INVALID_SSO_CLIENTS) >= 40


@pytest.mark.parametrize("invalid", INVALID_SETTINGS + INVALID_SSO_CLIENTS)
def test_invalid_manifest_rejected(
    crds_installed: ControlPlane, namespace: str, invalid: Case
) -> None:
    manifest = invalid.manifest()

    result = apply(crds_installed, namespace, manifest)

    assert_rejected(result, invalid.field, invalid.message)
    name = manifest["metadata"]["name"]
    lookup = crds_installed.kubectl(
        "get", resource_of(manifest), name, "-n", namespace, "--ignore-not-found", "-o", "name"
    )
    assert lookup.stdout.strip() == ""


@pytest.mark.parametrize(
    "base",
    [
        pytest.param(settings_manifest, id="settings base manifest"),
        pytest.param(entra_client, id="Entra client base manifest"),
        pytest.param(okta_client, id="Okta client base manifest"),
        pytest.param(generic_client, id="Generic client base manifest"),
    ],
)
def test_base_manifest_accepted(
    crds_installed: ControlPlane, namespace: str, base: Callable[[], Manifest]
) -> None:
    # The corpus derives every invalid case from these; each must be valid on its own.
    result = apply(crds_installed, namespace, base())

    assert result.returncode == 0, result.stderr


def test_settings_defaults_filled_in(crds_installed: ControlPlane, namespace: str) -> None:
    result = apply(crds_installed, namespace, settings_manifest())
    assert result.returncode == 0, result.stderr

    spec = get(crds_installed, namespace, SETTINGS_RESOURCE, "experio")["spec"]

    assert spec["publicUrl"] == "https://experio.example.com"
    assert spec["useSSO"] is False
    assert spec["allowHybridLogin"] is False
    assert spec["ssoUsersActiveByDefault"] is True
    assert spec["lockoutProtection"] is True
    assert spec["sidecar"]["url"] == "http://propelauth:2884"
    assert spec["sidecar"]["apiKeySecretRef"] == {"name": "propelauth-api-key", "key": "apiKey"}
    assert "setupSecretRef" not in spec["sidecar"]


def test_settings_partial_secret_ref_defaults_key(
    crds_installed: ControlPlane, namespace: str
) -> None:
    manifest = settings_manifest()
    manifest["spec"]["sidecar"] = {
        "url": "https://propelauth.auth.svc:2884",
        "apiKeySecretRef": {"name": "sidecar-key"},
        "setupSecretRef": {"name": "propelauth-setup", "key": "INITIAL_SETUP_SECRET"},
    }
    result = apply(crds_installed, namespace, manifest)
    assert result.returncode == 0, result.stderr

    sidecar = get(crds_installed, namespace, SETTINGS_RESOURCE, "experio")["spec"]["sidecar"]

    assert sidecar["url"] == "https://propelauth.auth.svc:2884"
    assert sidecar["apiKeySecretRef"] == {"name": "sidecar-key", "key": "apiKey"}
    assert sidecar["setupSecretRef"] == {"name": "propelauth-setup", "key": "INITIAL_SETUP_SECRET"}


def test_sso_client_defaults_filled_in(crds_installed: ControlPlane, namespace: str) -> None:
    manifest = entra_client()
    del manifest["spec"]["emailDomains"]
    result = apply(crds_installed, namespace, manifest)
    assert result.returncode == 0, result.stderr

    spec = get(crds_installed, namespace, SSO_CLIENT_RESOURCE, "acme")["spec"]

    assert spec["active"] is True
    assert spec["deletionPolicy"] == "Delete"
    assert spec["identityProvider"]["usesPkce"] is False
    assert spec["identityProvider"]["clientSecretRef"] == {
        "name": "acme-oidc",
        "key": "clientSecret",
    }
    assert "emailDomains" not in spec
    assert "customerId" not in spec


VALID_VARIANTS = [
    pytest.param(
        entra_client, {"spec.emailDomains": []}, id="empty emailDomains allow all domains"
    ),
    pytest.param(
        entra_client,
        {"spec.identityProvider.tenantId": "contoso.onmicrosoft.com"},
        id="Entra tenantId is a domain name",
    ),
    pytest.param(
        okta_client,
        {"spec.identityProvider.ssoDomain": "https://dev-12345.okta.com/"},
        id="Okta ssoDomain has https prefix and trailing slash",
    ),
    pytest.param(
        okta_client,
        {"spec.identityProvider.ssoDomain": "http://acme.okta-emea.com"},
        id="Okta ssoDomain has http prefix",
    ),
    pytest.param(
        generic_client,
        {
            "spec.identityProvider.authUrl": "http://localhost:8080/authorize",
            "spec.identityProvider.tokenUrl": "http://127.0.0.1:8080/token",
            "spec.identityProvider.userinfoUrl": "http://[::1]:8080/userinfo",
        },
        id="Generic URLs use http on loopback",
    ),
    pytest.param(
        generic_client,
        {
            "spec.additionalScopes": ["groups", "offline_access", "api://acme/read"],
            "spec.identityProvider.usesPkce": True,
            "spec.active": False,
            "spec.deletionPolicy": "Orphan",
            "spec.customerId": "acme-com-1a2b3c4d",
        },
        id="every optional field is set",
    ),
    pytest.param(
        entra_client,
        {"spec.emailDomains": [f"d{index}.acme.com" for index in range(100)]},
        id="one hundred email domains",
    ),
]


@pytest.mark.parametrize(("base", "edits"), VALID_VARIANTS)
def test_valid_variant_accepted(
    crds_installed: ControlPlane,
    namespace: str,
    base: Callable[[], Manifest],
    edits: dict[str, Any],
) -> None:
    manifest = Case(base, edits, field="", message="").manifest()

    result = apply(crds_installed, namespace, manifest)

    assert result.returncode == 0, result.stderr
    spec = get(crds_installed, namespace, resource_of(manifest), "acme")["spec"]
    for path, value in edits.items():
        node: Any = spec
        for name in path.split(".")[1:]:
            node = node[name]
        assert node == value, path


# --- customer ID transitions ------------------------------------------------------------------


def client_with_customer_id(customer_id: str | None) -> Manifest:
    manifest = okta_client()
    if customer_id is not None:
        manifest["spec"]["customerId"] = customer_id
    return manifest


def test_customer_id_change_rejected(crds_installed: ControlPlane, namespace: str) -> None:
    created = apply(crds_installed, namespace, client_with_customer_id("acme-com-1a2b3c4d"))
    assert created.returncode == 0, created.stderr

    result = apply(crds_installed, namespace, client_with_customer_id("acme-com-ffffffff"))

    assert_rejected(result, "spec.customerId", "spec.customerId is immutable once set")
    spec = get(crds_installed, namespace, SSO_CLIENT_RESOURCE, "acme")["spec"]
    assert spec["customerId"] == "acme-com-1a2b3c4d"


def test_customer_id_removal_rejected(crds_installed: ControlPlane, namespace: str) -> None:
    created = apply(crds_installed, namespace, client_with_customer_id("acme-com-1a2b3c4d"))
    assert created.returncode == 0, created.stderr

    result = apply(crds_installed, namespace, client_with_customer_id(None))

    assert_rejected(result, "spec.customerId", "spec.customerId cannot be removed once set")
    spec = get(crds_installed, namespace, SSO_CLIENT_RESOURCE, "acme")["spec"]
    assert spec["customerId"] == "acme-com-1a2b3c4d"


def test_customer_id_kept_on_update(crds_installed: ControlPlane, namespace: str) -> None:
    created = apply(crds_installed, namespace, client_with_customer_id("acme-com-1a2b3c4d"))
    assert created.returncode == 0, created.stderr
    changed = client_with_customer_id("acme-com-1a2b3c4d")
    changed["spec"]["displayName"] = "Acme Europe"
    changed["spec"]["emailDomains"] = ["acme.eu"]

    result = apply(crds_installed, namespace, changed)

    assert result.returncode == 0, result.stderr


def test_customer_id_added_before_status(crds_installed: ControlPlane, namespace: str) -> None:
    created = apply(crds_installed, namespace, client_with_customer_id(None))
    assert created.returncode == 0, created.stderr

    result = apply(crds_installed, namespace, client_with_customer_id("legacy-acme"))

    assert result.returncode == 0, result.stderr


def test_customer_id_added_with_status_value(crds_installed: ControlPlane, namespace: str) -> None:
    created = apply(crds_installed, namespace, client_with_customer_id(None))
    assert created.returncode == 0, created.stderr
    patch_status(
        crds_installed, namespace, SSO_CLIENT_RESOURCE, "acme", {"customerId": "acme-com-1a2b3c4d"}
    )

    result = apply(crds_installed, namespace, client_with_customer_id("acme-com-1a2b3c4d"))

    assert result.returncode == 0, result.stderr


def test_customer_id_added_mismatch_rejected(crds_installed: ControlPlane, namespace: str) -> None:
    created = apply(crds_installed, namespace, client_with_customer_id(None))
    assert created.returncode == 0, created.stderr
    patch_status(
        crds_installed, namespace, SSO_CLIENT_RESOURCE, "acme", {"customerId": "acme-com-1a2b3c4d"}
    )

    result = apply(crds_installed, namespace, client_with_customer_id("legacy-acme"))

    assert_rejected(
        result,
        "spec.customerId",
        "spec.customerId can only be added to an existing SSOClient with the value of "
        "status.customerId",
    )


# --- status and printer columns ----------------------------------------------------------------


def ready_condition(reason: str, message: str) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": "False",
        "observedGeneration": 1,
        "lastTransitionTime": NOW,
        "reason": reason,
        "message": message,
    }


SETTINGS_STATUS = {
    "observedGeneration": 1,
    "loginMode": "SSOOnly",
    "effectiveLoginMode": "Hybrid",
    "readyClients": 0,
    "configMapName": "experio-auth-settings",
    "conditions": [
        ready_condition("SidecarUnavailable", "sidecar at http://propelauth:2884 did not answer")
    ],
}

SSO_CLIENT_STATUS = {
    "observedGeneration": 1,
    "customerId": "acme-com-1a2b3c4d",
    "redirectUrl": "https://experio.example.com/api/auth/sso/callback",
    "allowAllDomains": False,
    "domains": "acme.com, acme.io",
    "lastSyncTime": NOW,
    "appliedClientSecret": {
        "name": "acme-oidc",
        "key": "clientSecret",
        "uid": "0b5c9a57-6f0e-4c43-9d3e-3a1c2f4e5d6a",
        "resourceVersion": "4711",
    },
    "routed": False,
    "conditions": [
        ready_condition("DomainConflict", "acme.com is routed to SSOClient beta"),
        {**ready_condition("Conflict", ""), "type": "Stalled", "status": "True"},
    ],
}


@pytest.mark.parametrize(
    ("base", "status"),
    [
        pytest.param(settings_manifest, SETTINGS_STATUS, id="settings status"),
        pytest.param(okta_client, SSO_CLIENT_STATUS, id="SSO client status"),
    ],
)
def test_status_kept_as_written(
    crds_installed: ControlPlane,
    namespace: str,
    base: Callable[[], Manifest],
    status: dict[str, Any],
) -> None:
    manifest = base()
    created = apply(crds_installed, namespace, manifest)
    assert created.returncode == 0, created.stderr
    resource = resource_of(manifest)
    name = manifest["metadata"]["name"]

    patch_status(crds_installed, namespace, resource, name, status)

    # Fields missing from the schema would have been pruned silently.
    assert get(crds_installed, namespace, resource, name)["status"] == status


def test_condition_reason_not_camel_case_rejected(
    crds_installed: ControlPlane, namespace: str
) -> None:
    created = apply(crds_installed, namespace, okta_client())
    assert created.returncode == 0, created.stderr

    result = crds_installed.kubectl(
        "patch",
        SSO_CLIENT_RESOURCE,
        "acme",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"conditions": [ready_condition("domain conflict", "")]}}),
        check=False,
    )

    assert_rejected(result, "status.conditions[0].reason", "should match")


def wide_table(cluster: ControlPlane, namespace: str, resource: str) -> list[list[str]]:
    # Columns are separated by at least two spaces; single spaces occur inside values.
    output = cluster.kubectl("get", resource, "-n", namespace, "-o", "wide").stdout
    return [
        [cell.strip() for cell in line.split("  ") if cell.strip()] for line in output.splitlines()
    ]


def test_sso_client_wide_columns(crds_installed: ControlPlane, namespace: str) -> None:
    created = apply(crds_installed, namespace, okta_client())
    assert created.returncode == 0, created.stderr
    patch_status(crds_installed, namespace, SSO_CLIENT_RESOURCE, "acme", SSO_CLIENT_STATUS)

    header, row = wide_table(crds_installed, namespace, SSO_CLIENT_RESOURCE)

    assert header == [
        "NAME",
        "DISPLAY NAME",
        "DOMAINS",
        "IDP",
        "ACTIVE",
        "READY",
        "REASON",
        "CUSTOMER ID",
        "MESSAGE",
        "REDIRECT URL",
        "AGE",
    ]
    assert row[:-1] == [
        "acme",
        "Acme Corporation",
        "acme.com, acme.io",
        "Okta",
        "true",
        "False",
        "DomainConflict",
        "acme-com-1a2b3c4d",
        "acme.com is routed to SSOClient beta",
        "https://experio.example.com/api/auth/sso/callback",
    ]


def test_settings_wide_columns(crds_installed: ControlPlane, namespace: str) -> None:
    created = apply(crds_installed, namespace, settings_manifest())
    assert created.returncode == 0, created.stderr
    patch_status(crds_installed, namespace, SETTINGS_RESOURCE, "experio", SETTINGS_STATUS)

    header, row = wide_table(crds_installed, namespace, SETTINGS_RESOURCE)

    assert header == [
        "NAME",
        "LOGIN MODE",
        "READY",
        "REASON",
        "REQUESTED MODE",
        "READY CLIENTS",
        "MESSAGE",
        "AGE",
    ]
    assert row[:-1] == [
        "experio",
        "Hybrid",
        "False",
        "SidecarUnavailable",
        "SSOOnly",
        "0",
        "sidecar at http://propelauth:2884 did not answer",
    ]


def test_short_names_and_category(crds_installed: ControlPlane, namespace: str) -> None:
    for manifest in (settings_manifest(), okta_client()):
        created = apply(crds_installed, namespace, manifest)
        assert created.returncode == 0, created.stderr

    def names(resource: str) -> list[str]:
        output = crds_installed.kubectl("get", resource, "-n", namespace, "-o", "name").stdout
        return sorted(output.split())

    assert names("eas") == [f"experioauthsettings.{API_VERSION.split('/')[0]}/experio"]
    assert names("sso") == [f"ssoclient.{API_VERSION.split('/')[0]}/acme"]
    assert names("experio") == sorted(names("eas") + names("sso"))
