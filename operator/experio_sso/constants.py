"""Names fixed by the operator's API: group, kinds, finalizer, labels, rendered output."""

from __future__ import annotations

from typing import Final

GROUP: Final = "auth.experio.cloud"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

SETTINGS_KIND: Final = "ExperioAuthSettings"
SETTINGS_PLURAL: Final = "experioauthsettings"
CLIENT_KIND: Final = "SSOClient"
CLIENT_PLURAL: Final = "ssoclients"

FINALIZER: Final = f"{GROUP}/finalizer"
"""Holds an SSOClient until its sidecar client is deleted (or its policy is Orphan)."""

KOPF_FINALIZER: Final = f"{GROUP}/kopf-finalizer"
"""kopf's own finalizer name; no kopf handler requires it, so kopf never adds it."""

MANAGER_NAME: Final = "experio-sso-operator"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"

CONFIGMAP_NAME: Final = "experio-auth-settings"
ROUTES_KEY: Final = "sso-routes.json"
REDIRECT_PATH: Final = "/api/auth/sso/callback"

MINIMUM_SETUP_SECRET_LENGTH: Final = 16
