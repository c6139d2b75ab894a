"""Specs parse with defaults and normalisation; customer IDs are stable."""

from __future__ import annotations

import re

import pytest

from experio_sso.resources import (
    LoginMode,
    SpecError,
    domains_summary,
    generate_customer_id,
    parse_client_spec,
    parse_settings_spec,
)

ENTRA = {
    "type": "MicrosoftEntra",
    "clientId": "app",
    "tenantId": "tenant",
    "clientSecretRef": {"name": "idp"},
}


def test_customer_id_uses_first_domain_and_uid_suffix() -> None:
    customer_id = generate_customer_id("uid-1", ("acme.com", "acme.org"))

    assert re.fullmatch(r"acme-com-[0-9a-f]{8}", customer_id)
    assert generate_customer_id("uid-1", ("acme.com",)) == customer_id
    assert generate_customer_id("uid-2", ("acme.com",)) != customer_id


def test_customer_id_without_domains_is_allow_all() -> None:
    assert re.fullmatch(r"allow-all-[0-9a-f]{8}", generate_customer_id("uid", ()))


def test_client_defaults() -> None:
    spec = parse_client_spec({"displayName": "Acme", "identityProvider": ENTRA})

    assert spec.active
    assert spec.deletion_policy == "Delete"
    assert spec.identity_provider.client_secret_ref.key == "clientSecret"
    assert spec.allows_all_domains
    assert domains_summary(spec.email_domains) == "Allow all domains"


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("https://acme.okta.com/", "acme.okta.com"),
        ("http://acme.okta.com", "acme.okta.com"),
        ("acme.okta.com", "acme.okta.com"),
    ],
)
def test_okta_domain_scheme_and_slash_are_stripped(written: str, stored: str) -> None:
    idp = {"type": "Okta", "clientId": "a", "ssoDomain": written, "clientSecretRef": {"name": "s"}}
    spec = parse_client_spec({"displayName": "Acme", "identityProvider": idp})

    assert spec.identity_provider.sso_domain == stored


def test_invalid_client_spec_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"spec\.identityProvider"):
        parse_client_spec({"displayName": "Acme"})


@pytest.mark.parametrize(
    ("use_sso", "hybrid", "mode"),
    [
        (False, False, LoginMode.PASSWORD_ONLY),
        (False, True, LoginMode.PASSWORD_ONLY),
        (True, False, LoginMode.SSO_ONLY),
        (True, True, LoginMode.HYBRID),
    ],
)
def test_login_mode_follows_flags(use_sso: bool, hybrid: bool, mode: LoginMode) -> None:
    spec = parse_settings_spec(
        {"publicUrl": "https://x.example", "useSSO": use_sso, "allowHybridLogin": hybrid}
    )

    assert spec.login_mode is mode


def test_settings_defaults_and_redirect_url() -> None:
    spec = parse_settings_spec({"publicUrl": "https://experio.example.com"})

    assert spec.redirect_url == "https://experio.example.com/api/auth/sso/callback"
    assert spec.sidecar.url == "http://propelauth:2884"
    assert spec.sidecar.api_key_secret_ref.name == "propelauth-api-key"
    assert spec.lockout_protection
    assert spec.sso_users_active_by_default
