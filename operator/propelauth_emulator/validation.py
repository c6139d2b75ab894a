"""Request validation for the OIDC client commands.

The checks copy what the sidecar is documented to check (required fields per IdP type, URL and
domain syntax) and report every problem of a request at once as ``InvalidFields`` with
``{"fields": [{"field", "code", "message"}]}``. Field paths use the wire names, nested with dots
and list indexes (``idpInfoFromCustomer.tenantId``, ``emailDomainAllowlist[1]``).

The ``code`` values are the emulator's own: the real sidecar's codes are not published.

- ``required``: a required field is missing.
- ``invalid_type``: the JSON type is wrong, for example a number where a string belongs.
- ``empty``: a string that must carry a value is empty or only whitespace.
- ``invalid_url``: not an absolute ``http``/``https`` URL with a host.
- ``invalid_domain``: not a DNS name such as ``acme.com`` (no scheme, path or port).
- ``invalid_value``: outside a closed set, such as an unknown ``idpType``.
- ``immutable``: the field cannot be changed by a patch.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from . import protocol
from .models import IDP_TYPE_FIELDS, SCIM_MATCHING_STRATEGIES, OidcClient

_DOMAIN_LABEL: Final = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_TOP_LEVEL_LABEL: Final = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
# NB: Entra accepts a GUID, a verified domain, or the words "common" / "organizations" as the
# tenant, so only characters that are safe in a URL path segment are enforced.
_TENANT_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,253}$")
_MAX_DOMAIN_LENGTH: Final = 253


def is_valid_url(value: str) -> bool:
    """Tell whether ``value`` is an absolute http(s) URL with a host and no whitespace."""
    if not value or any(character.isspace() for character in value):
        return False
    try:
        parts = urlsplit(value)
        # Accessing the port validates it; urlsplit alone accepts "host:99999".
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def is_valid_domain(value: str) -> bool:
    """Tell whether ``value`` is a DNS name with at least two labels, such as ``acme.com``."""
    if not value or len(value) > _MAX_DOMAIN_LENGTH:
        return False
    labels = value.removesuffix(".").split(".")
    if len(labels) < 2:
        return False
    if not all(_DOMAIN_LABEL.match(label) for label in labels):
        return False
    return bool(_TOP_LEVEL_LABEL.match(labels[-1]))


@dataclasses.dataclass
class FieldErrors:
    """The field errors of one request, collected so that all are reported together."""

    fields: list[dict[str, str]] = dataclasses.field(default_factory=list)

    def add(self, field: str, code: str, message: str) -> None:
        """Record one invalid field."""
        self.fields.append({"field": field, "code": code, "message": message})

    def raise_if_any(self) -> None:
        """Raise ``InvalidFields`` when at least one error was recorded."""
        if self.fields:
            raise protocol.CommandError(protocol.INVALID_FIELDS, {"fields": list(self.fields)})


class _FieldReader:
    """Reads typed fields out of a JSON object and records what is wrong with them."""

    def __init__(self, data: dict[str, Any], errors: FieldErrors, prefix: str = "") -> None:
        self._data = data
        self._errors = errors
        self._prefix = prefix

    def path(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def nested(self, name: str, data: dict[str, Any]) -> _FieldReader:
        """Return a reader for the object ``data`` found under ``name``."""
        return _FieldReader(data, self._errors, f"{self.path(name)}.")

    def has(self, name: str) -> bool:
        return self._data.get(name) is not None

    def string(
        self,
        name: str,
        *,
        required: bool,
        check: Callable[[str], bool] | None = None,
        code: str = "",
        message: str = "",
    ) -> str | None:
        """Read a non-empty string; ``check`` adds a syntax test with its error code."""
        value = self._data.get(name)
        if value is None:
            if required:
                self._errors.add(self.path(name), "required", f"{self.path(name)} is required.")
            return None
        if not isinstance(value, str):
            self._errors.add(
                self.path(name), "invalid_type", f"{self.path(name)} must be a string."
            )
            return None
        if not value.strip():
            self._errors.add(self.path(name), "empty", f"{self.path(name)} must not be empty.")
            return None
        if check is not None and not check(value):
            self._errors.add(self.path(name), code, message.format(field=self.path(name)))
            return None
        return value

    def boolean(self, name: str, *, required: bool) -> bool | None:
        value = self._data.get(name)
        if value is None:
            if required:
                self._errors.add(self.path(name), "required", f"{self.path(name)} is required.")
            return None
        if not isinstance(value, bool):
            self._errors.add(
                self.path(name), "invalid_type", f"{self.path(name)} must be true or false."
            )
            return None
        return value

    def string_list(
        self,
        name: str,
        *,
        check: Callable[[str], bool] | None = None,
        code: str = "",
        message: str = "",
    ) -> tuple[str, ...] | None:
        """Read a list of strings, checking each item; None when absent or invalid."""
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            self._errors.add(self.path(name), "invalid_type", f"{self.path(name)} must be a list.")
            return None
        items: list[str] = []
        valid = True
        for index, item in enumerate(value):
            item_path = f"{self.path(name)}[{index}]"
            if not isinstance(item, str):
                self._errors.add(item_path, "invalid_type", f"{item_path} must be a string.")
                valid = False
            elif not item.strip():
                self._errors.add(item_path, "empty", f"{item_path} must not be empty.")
                valid = False
            elif check is not None and not check(item):
                self._errors.add(item_path, code, message.format(field=item_path))
                valid = False
            else:
                items.append(item)
        return tuple(items) if valid else None

    def object(self, name: str, *, required: bool) -> dict[str, Any] | None:
        value = self._data.get(name)
        if value is None:
            if required:
                self._errors.add(self.path(name), "required", f"{self.path(name)} is required.")
            return None
        if not isinstance(value, dict):
            self._errors.add(
                self.path(name), "invalid_type", f"{self.path(name)} must be an object."
            )
            return None
        return value


_URL_MESSAGE: Final = "{field} must be an absolute http or https URL with a host."
_DOMAIN_MESSAGE: Final = (
    "{field} must be a domain name such as example.com, without scheme, path or port."
)


def _read_url(reader: _FieldReader, name: str, *, required: bool) -> str | None:
    return reader.string(
        name, required=required, check=is_valid_url, code="invalid_url", message=_URL_MESSAGE
    )


def _read_idp_field(reader: _FieldReader, name: str, *, required: bool) -> str | None:
    """Read one IdP-type field with the syntax check that belongs to it."""
    if name == "tenantId":
        return reader.string(
            name,
            required=required,
            check=lambda value: bool(_TENANT_ID.match(value)),
            code="invalid_value",
            message="{field} must be a tenant GUID or domain, made of letters, digits, . _ -",
        )
    if name == "ssoDomain":
        return reader.string(
            name,
            required=required,
            check=is_valid_domain,
            code="invalid_domain",
            message=_DOMAIN_MESSAGE,
        )
    return _read_url(reader, name, required=required)


def _read_idp_type(reader: _FieldReader) -> str | None:
    return reader.string(
        "idpType",
        required=True,
        check=lambda value: value in IDP_TYPE_FIELDS,
        code="invalid_value",
        message="{field} must be one of " + ", ".join(IDP_TYPE_FIELDS) + ".",
    )


def _read_optional_fields(reader: _FieldReader, *, redirect_required: bool) -> dict[str, Any]:
    """Read redirect URLs, domains, scopes, display name and SCIM strategy.

    Returns the ``OidcClient`` field names of the values that are present and valid.
    """
    values: dict[str, Any] = {}

    redirect_url = _read_url(reader, "redirectUrl", required=redirect_required)
    if redirect_url is not None:
        values["redirect_url"] = redirect_url

    additional_redirect_urls = reader.string_list(
        "additionalRedirectUrls", check=is_valid_url, code="invalid_url", message=_URL_MESSAGE
    )
    if additional_redirect_urls is not None:
        values["additional_redirect_urls"] = additional_redirect_urls

    email_domains = reader.string_list(
        "emailDomainAllowlist",
        check=is_valid_domain,
        code="invalid_domain",
        message=_DOMAIN_MESSAGE,
    )
    if email_domains is not None:
        values["email_domain_allowlist"] = email_domains

    scopes = reader.string_list(
        "additionalScopes",
        check=lambda scope: not any(c.isspace() for c in scope),
        code="invalid_value",
        message="{field} must be one scope without spaces.",
    )
    if scopes is not None:
        values["additional_scopes"] = scopes

    if reader.has("displayName"):
        display_name = reader.string("displayName", required=False)
        if display_name is not None:
            values["display_name"] = display_name

    scim = reader.object("scimMatchingDefinition", required=False)
    if scim is not None:
        scim_reader = reader.nested("scimMatchingDefinition", scim)
        strategy = scim_reader.string(
            "strategy",
            required=True,
            check=lambda value: value in SCIM_MATCHING_STRATEGIES,
            code="invalid_value",
            message="{field} must be one of " + ", ".join(sorted(SCIM_MATCHING_STRATEGIES)) + ".",
        )
        if strategy is not None:
            values["scim_matching_strategy"] = strategy

    return values


def parse_create(data: dict[str, Any]) -> tuple[OidcClient, str]:
    """Validate a ``CreateOidcClient`` request and return the client and its client secret.

    Raises ``InvalidFields`` listing every invalid field.
    """
    errors = FieldErrors()
    reader = _FieldReader(data, errors)

    customer_id = reader.string("customerId", required=True)
    values = _read_optional_fields(reader, redirect_required=True)

    idp_info = reader.object("idpInfoFromCustomer", required=True)
    idp_type = client_id = client_secret = None
    uses_pkce: bool | None = None
    idp_fields: dict[str, str] = {}
    if idp_info is not None:
        idp_reader = reader.nested("idpInfoFromCustomer", idp_info)
        idp_type = _read_idp_type(idp_reader)
        client_id = idp_reader.string("clientId", required=True)
        client_secret = idp_reader.string("clientSecret", required=True)
        uses_pkce = idp_reader.boolean("usesPkce", required=True)
        for name in IDP_TYPE_FIELDS.get(idp_type or "", ()):
            value = _read_idp_field(idp_reader, name, required=True)
            if value is not None:
                idp_fields[name] = value

    errors.raise_if_any()
    # raise_if_any() raised unless every required value was read.
    assert customer_id is not None
    assert idp_type is not None
    assert client_id is not None
    assert client_secret is not None
    assert uses_pkce is not None

    client = OidcClient(
        customer_id=customer_id,
        client_id=client_id,
        idp_type=idp_type,
        idp_fields=idp_fields,
        uses_pkce=uses_pkce,
        **values,
    )
    return client, client_secret


def parse_patch(data: dict[str, Any], current: OidcClient) -> tuple[OidcClient, str | None]:
    """Validate a ``PatchOidcClient`` request against the stored client.

    Returns the patched client and the new client secret, or None when the secret is unchanged.
    Absent fields keep their stored values, and lists are replaced as a whole.

    The SDK's patch type for the IdP part is a union keyed by ``idpType`` whose fields are all
    optional and which has no ``clientId``. So a patch may name another IdP type: the emulator
    accepts that change when the patch carries every field the new type needs, keeping the
    client ID, secret and PKCE flag unless the patch sets them. A ``clientId`` in the IdP part
    is rejected with ``immutable``.

    Raises ``InvalidFields`` listing every invalid field.
    """
    errors = FieldErrors()
    reader = _FieldReader(data, errors)
    values = _read_optional_fields(reader, redirect_required=False)

    new_secret: str | None = None
    idp_info = reader.object("idpInfoFromCustomer", required=False)
    if idp_info is not None:
        idp_reader = reader.nested("idpInfoFromCustomer", idp_info)
        idp_type = _read_idp_type(idp_reader)
        if "clientId" in idp_info:
            errors.add(
                "idpInfoFromCustomer.clientId",
                "immutable",
                "The client ID cannot be patched; delete the OIDC client and create it again.",
            )
        new_secret = idp_reader.string("clientSecret", required=False)
        uses_pkce = idp_reader.boolean("usesPkce", required=False)
        if uses_pkce is not None:
            values["uses_pkce"] = uses_pkce

        if idp_type is not None:
            type_changes = idp_type != current.idp_type
            idp_fields = {} if type_changes else dict(current.idp_fields)
            for name in IDP_TYPE_FIELDS[idp_type]:
                value = _read_idp_field(idp_reader, name, required=False)
                if value is not None:
                    idp_fields[name] = value
                elif type_changes and name not in idp_info:
                    errors.add(
                        f"idpInfoFromCustomer.{name}",
                        "required",
                        f"idpInfoFromCustomer.{name} is required to change idpType from "
                        f"{current.idp_type} to {idp_type}.",
                    )
            values["idp_type"] = idp_type
            values["idp_fields"] = idp_fields

    errors.raise_if_any()
    return dataclasses.replace(current, **values), new_secret


def read_client_identifier(
    data: dict[str, Any], on_error: Callable[[str], protocol.CommandError]
) -> tuple[str, str]:
    """Return ``("oidcClientId" | "customerId", value)`` from a request that names one client.

    Exactly one of the two must be a non-empty string. ``on_error`` builds the error to raise
    with a message, because the allowed error type differs per command.
    """
    present = [name for name in ("oidcClientId", "customerId") if data.get(name) is not None]
    if len(present) != 1:
        raise on_error("Exactly one of oidcClientId and customerId is required.")
    name = present[0]
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise on_error(f"{name} must be a non-empty string.")
    return name, value
