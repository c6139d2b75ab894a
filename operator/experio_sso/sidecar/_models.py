"""Typed requests and responses of the sidecar's OIDC client commands.

The shapes follow the official BYO SDK (``propelauth-byo`` 1.0.12, its ``generated/`` types):
snake_case attributes in Python, camelCase on the wire through an alias generator. The
identity provider part is a union discriminated by ``idpType`` in three variants: the full one
for ``CreateOidcClient`` (with ``clientId`` and ``clientSecret``), the patch one for
``PatchOidcClient`` (no ``clientId`` because a client ID cannot be patched, every other field
optional), and the fetched one returned by ``FetchOidcClient`` (no ``clientSecret``).

Client secrets are ``SecretStr``: ``repr``, ``str``, ``model_dump`` and ``model_dump_json``
print ``**********``. Only ``to_wire`` reveals them, for the request body the client sends.
Validation errors never echo input values (``hide_input_in_errors``), so that a malformed
response cannot carry a key into an exception message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    SecretStr,
    field_serializer,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "CreateOidcClientRequest",
    "FetchedGenericIdpInfo",
    "FetchedIdpInfo",
    "FetchedMicrosoftEntraIdpInfo",
    "FetchedOktaIdpInfo",
    "GenericIdpInfo",
    "GenericIdpInfoPatch",
    "IdpInfo",
    "IdpInfoPatch",
    "MicrosoftEntraIdpInfo",
    "MicrosoftEntraIdpInfoPatch",
    "OidcClient",
    "OktaIdpInfo",
    "OktaIdpInfoPatch",
    "PatchOidcClientRequest",
    "ScimConnection",
    "ScimMatchingDefinition",
    "ScimUserMatchingStrategy",
]

# Context key that makes the client secret serializer write the real value.
_REVEAL_SECRETS = "reveal_secrets"


class _WireModel(BaseModel):
    """Base of every wire model: camelCase aliases, immutable, no input in errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
        hide_input_in_errors=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON object sent to the sidecar: camelCase, ``None`` fields left out.

        This is the only serialization that contains client secrets in clear text.
        """
        return self.model_dump(
            mode="json", by_alias=True, exclude_none=True, context={_REVEAL_SECRETS: True}
        )


class _RequestModel(_WireModel):
    """Base of request models: unknown fields are a programming error."""

    model_config = ConfigDict(extra="forbid")


class _ResponseModel(_WireModel):
    """Base of response models: fields added by newer sidecars are ignored."""

    model_config = ConfigDict(extra="ignore")


def _serialize_secret(value: SecretStr | None, info: FieldSerializationInfo) -> str | None:
    """Write a client secret in clear text for ``to_wire`` and masked everywhere else."""
    if value is None:
        return None
    context = info.context
    if isinstance(context, dict) and context.get(_REVEAL_SECRETS) is True:
        return value.get_secret_value()
    return str(value)


ScimUserMatchingStrategy = Literal[
    "OidcSubToScimUsername",
    "OidcSubToScimExternalId",
    "OidcEmailToScimUsername",
    "OidcEmailUsernameToScimUsername",
    "OidcPreferredUsernameToScimUsername",
]
"""Rule by which the sidecar matches an OIDC login to a SCIM user."""


class ScimMatchingDefinition(_WireModel):
    """SCIM matching rule of an OIDC client (the operator does not set it, but keeps it)."""

    model_config = ConfigDict(extra="ignore")

    strategy: ScimUserMatchingStrategy


# Identity provider information sent with CreateOidcClient.


class _IdpInfoBase(_RequestModel):
    client_id: str
    client_secret: SecretStr
    uses_pkce: bool = False

    @field_serializer("client_secret")
    def _write_client_secret(self, value: SecretStr, info: FieldSerializationInfo) -> str | None:
        return _serialize_secret(value, info)


class MicrosoftEntraIdpInfo(_IdpInfoBase):
    """A Microsoft Entra ID tenant as identity provider."""

    idp_type: Literal["MicrosoftEntra"] = "MicrosoftEntra"
    tenant_id: str


class OktaIdpInfo(_IdpInfoBase):
    """An Okta organization as identity provider; ``sso_domain`` is a host name."""

    idp_type: Literal["Okta"] = "Okta"
    sso_domain: str


class GenericIdpInfo(_IdpInfoBase):
    """Any OIDC identity provider, given by its three endpoint URLs."""

    idp_type: Literal["Generic"] = "Generic"
    auth_url: str
    token_url: str
    userinfo_url: str


IdpInfo = Annotated[
    MicrosoftEntraIdpInfo | OktaIdpInfo | GenericIdpInfo, Field(discriminator="idp_type")
]
"""Identity provider information of a new OIDC client, discriminated by ``idpType``."""


# Identity provider information sent with PatchOidcClient.


class _IdpInfoPatchBase(_RequestModel):
    client_secret: SecretStr | None = None
    uses_pkce: bool | None = None

    @field_serializer("client_secret")
    def _write_client_secret(
        self, value: SecretStr | None, info: FieldSerializationInfo
    ) -> str | None:
        return _serialize_secret(value, info)


class MicrosoftEntraIdpInfoPatch(_IdpInfoPatchBase):
    """Changes to a Microsoft Entra identity provider; ``None`` leaves a field unchanged."""

    idp_type: Literal["MicrosoftEntra"] = "MicrosoftEntra"
    tenant_id: str | None = None


class OktaIdpInfoPatch(_IdpInfoPatchBase):
    """Changes to an Okta identity provider; ``None`` leaves a field unchanged."""

    idp_type: Literal["Okta"] = "Okta"
    sso_domain: str | None = None


class GenericIdpInfoPatch(_IdpInfoPatchBase):
    """Changes to a generic OIDC identity provider; ``None`` leaves a field unchanged."""

    idp_type: Literal["Generic"] = "Generic"
    auth_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None


IdpInfoPatch = Annotated[
    MicrosoftEntraIdpInfoPatch | OktaIdpInfoPatch | GenericIdpInfoPatch,
    Field(discriminator="idp_type"),
]
"""Changes to the identity provider of an OIDC client; it has no client ID to change."""


# Identity provider information returned by FetchOidcClient.


class _FetchedIdpInfoBase(_ResponseModel):
    client_id: str
    uses_pkce: bool


class FetchedMicrosoftEntraIdpInfo(_FetchedIdpInfoBase):
    """A Microsoft Entra identity provider as the sidecar stores it, without the secret."""

    idp_type: Literal["MicrosoftEntra"] = "MicrosoftEntra"
    tenant_id: str


class FetchedOktaIdpInfo(_FetchedIdpInfoBase):
    """An Okta identity provider as the sidecar stores it, without the secret."""

    idp_type: Literal["Okta"] = "Okta"
    sso_domain: str


class FetchedGenericIdpInfo(_FetchedIdpInfoBase):
    """A generic OIDC identity provider as the sidecar stores it, without the secret."""

    idp_type: Literal["Generic"] = "Generic"
    auth_url: str
    token_url: str
    userinfo_url: str


FetchedIdpInfo = Annotated[
    FetchedMicrosoftEntraIdpInfo | FetchedOktaIdpInfo | FetchedGenericIdpInfo,
    Field(discriminator="idp_type"),
]
"""Identity provider information of a fetched OIDC client, discriminated by ``idpType``."""


# Commands and responses.


class CreateOidcClientRequest(_RequestModel):
    """Data of ``CreateOidcClient``; the sidecar allows one OIDC client per customer ID."""

    idp_info_from_customer: IdpInfo
    customer_id: str
    redirect_url: str
    display_name: str | None = None
    additional_redirect_urls: list[str] | None = None
    additional_scopes: list[str] | None = None
    scim_matching_definition: ScimMatchingDefinition | None = None
    email_domain_allowlist: list[str] | None = None


class PatchOidcClientRequest(_RequestModel):
    """Data of ``PatchOidcClient`` without the identifier; ``None`` leaves a field unchanged.

    An empty list is sent as such: ``email_domain_allowlist=[]`` clears the allowlist.
    """

    idp_info_from_customer: IdpInfoPatch | None = None
    display_name: str | None = None
    email_domain_allowlist: list[str] | None = None
    redirect_url: str | None = None
    additional_redirect_urls: list[str] | None = None
    additional_scopes: list[str] | None = None
    scim_matching_definition: ScimMatchingDefinition | None = None


class ScimConnection(_ResponseModel):
    """The SCIM connection attached to an OIDC client, reduced to its identifiers."""

    connection_id: str
    customer_id: str
    display_name: str | None = None
    scim_api_key_valid_until: int | None = None


class OidcClient(_ResponseModel):
    """An OIDC client as ``FetchOidcClient`` returns it; the client secret is never returned."""

    customer_id: str
    display_name: str | None = None
    redirect_url: str
    additional_redirect_urls: list[str] = Field(default_factory=list)
    email_domain_allowlist: list[str] = Field(default_factory=list)
    additional_scopes: list[str] = Field(default_factory=list)
    idp_info_from_customer: FetchedIdpInfo
    scim_connection: ScimConnection | None = None
    scim_matching_definition: ScimMatchingDefinition | None = None


class _ClientIdResponse(_ResponseModel):
    """Response of ``CreateOidcClient`` and ``PatchOidcClient``."""

    client_id: str


class _PingResponse(_ResponseModel):
    """Response of ``Ping``: the sidecar's current time as an integer timestamp."""

    timestamp: int


class _InitialSetupResponse(_ResponseModel):
    """Response of a successful initial setup, as this project assumes it."""

    api_key: SecretStr
