"""Typed views of the two custom resources, parsed from the objects the API server returns.

The CRD schemas validate and default every field at admission, so parsing here fails only on an
object written before a schema change or by a client that skipped validation; such a failure is
reported as ``InvalidFields`` naming the field. Normalisation that the schema cannot express
(stripping the scheme and trailing slash of an Okta domain) happens here, once.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from experio_sso.constants import REDIRECT_PATH


class _Spec(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class SecretKeyRef(_Spec):
    """A key of a Secret in the resource's namespace."""

    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class ClientSecretRef(SecretKeyRef):
    key: str = Field(default="clientSecret", min_length=1)


class SidecarSpec(_Spec):
    url: str = "http://propelauth:2884"
    api_key_secret_ref: SecretKeyRef = Field(
        default=SecretKeyRef(name="propelauth-api-key", key="apiKey"), alias="apiKeySecretRef"
    )
    setup_secret_ref: SecretKeyRef | None = Field(default=None, alias="setupSecretRef")


class LoginMode(StrEnum):
    PASSWORD_ONLY = "PasswordOnly"
    SSO_ONLY = "SSOOnly"
    HYBRID = "Hybrid"


class SettingsSpec(_Spec):
    """``ExperioAuthSettings.spec``."""

    public_url: str = Field(alias="publicUrl", min_length=1)
    use_sso: bool = Field(default=False, alias="useSSO")
    allow_hybrid_login: bool = Field(default=False, alias="allowHybridLogin")
    sso_users_active_by_default: bool = Field(default=True, alias="ssoUsersActiveByDefault")
    lockout_protection: bool = Field(default=True, alias="lockoutProtection")
    sidecar: SidecarSpec = SidecarSpec()

    @property
    def redirect_url(self) -> str:
        return self.public_url.rstrip("/") + REDIRECT_PATH

    @property
    def login_mode(self) -> LoginMode:
        if not self.use_sso:
            return LoginMode.PASSWORD_ONLY
        return LoginMode.HYBRID if self.allow_hybrid_login else LoginMode.SSO_ONLY


class IdentityProviderType(StrEnum):
    MICROSOFT_ENTRA = "MicrosoftEntra"
    OKTA = "Okta"
    GENERIC = "Generic"


class IdentityProviderSpec(_Spec):
    """``SSOClient.spec.identityProvider``; which fields apply depends on ``type``."""

    type: IdentityProviderType
    client_id: str = Field(alias="clientId", min_length=1)
    client_secret_ref: ClientSecretRef = Field(alias="clientSecretRef")
    tenant_id: str | None = Field(default=None, alias="tenantId")
    sso_domain: str | None = Field(default=None, alias="ssoDomain")
    auth_url: str | None = Field(default=None, alias="authUrl")
    token_url: str | None = Field(default=None, alias="tokenUrl")
    userinfo_url: str | None = Field(default=None, alias="userinfoUrl")
    uses_pkce: bool = Field(default=False, alias="usesPkce")

    @field_validator("sso_domain")
    @classmethod
    def _strip_okta_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for scheme in ("https://", "http://"):
            if value.lower().startswith(scheme):
                value = value[len(scheme) :]
        return value.rstrip("/")


class ClientSpec(_Spec):
    """``SSOClient.spec``."""

    display_name: str = Field(alias="displayName", min_length=1)
    email_domains: tuple[str, ...] = Field(default=(), alias="emailDomains")
    active: bool = True
    identity_provider: IdentityProviderSpec = Field(alias="identityProvider")
    additional_scopes: tuple[str, ...] = Field(default=(), alias="additionalScopes")
    customer_id: str | None = Field(default=None, alias="customerId")
    deletion_policy: Literal["Delete", "Orphan"] = Field(default="Delete", alias="deletionPolicy")

    @field_validator("email_domains")
    @classmethod
    def _lowercase_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(domain.lower() for domain in value)

    @property
    def allows_all_domains(self) -> bool:
        return not self.email_domains


class SpecError(ValueError):
    """A spec that does not parse; the message names the fields, as ``spec.<path>``."""


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        path = ".".join(str(p) for p in ("spec", *item["loc"]))
        parts.append(f"{path}: {item['msg']}")
    return "; ".join(parts)


def parse_settings_spec(spec: dict[str, Any] | None) -> SettingsSpec:
    """Parse an ``ExperioAuthSettings`` spec; raise :class:`SpecError` naming the fields."""
    try:
        return SettingsSpec.model_validate(spec or {})
    except ValidationError as exc:
        raise SpecError(_describe(exc)) from None


def parse_client_spec(spec: dict[str, Any] | None) -> ClientSpec:
    """Parse an ``SSOClient`` spec; raise :class:`SpecError` naming the fields."""
    try:
        return ClientSpec.model_validate(spec or {})
    except ValidationError as exc:
        raise SpecError(_describe(exc)) from None


def generate_customer_id(uid: str, email_domains: tuple[str, ...]) -> str:
    """Return the customer ID for a new SSOClient.

    The first email domain with dots as dashes (``allow-all`` without domains), then eight hex
    digits derived from the resource UID, so that a retry after a crash produces the same ID.
    """
    stem = email_domains[0].replace(".", "-") if email_domains else "allow-all"
    suffix = hashlib.sha256(uid.encode()).hexdigest()[:8]
    return f"{stem}-{suffix}"


def domains_summary(email_domains: tuple[str, ...]) -> str:
    """Return the human summary shown in ``status.domains``."""
    return ", ".join(email_domains) if email_domains else "Allow all domains"
