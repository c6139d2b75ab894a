"""Operator configuration, read once at start-up from ``EXPERIO_SSO_*`` environment variables.

A bad value stops start-up with the variable's name, the value's problem and what is expected,
so that a typo in a Deployment shows up in ``kubectl logs`` at once instead of as odd behaviour.
Command-line options of ``experio-sso run`` override the matching variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "EXPERIO_SSO_"


class ConfigError(ValueError):
    """An environment variable has a value the operator cannot use."""


class OperatorConfig(BaseModel):
    """Every setting of the operator process; field names are the variables without the prefix."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    namespace: str | None = None
    """Watch only this namespace (a namespaced install); empty or unset: all namespaces."""

    drift_interval_seconds: float = Field(default=300.0, ge=5.0, le=86400.0)
    """Seconds between two reads of one sidecar client to detect drift, default 300.

    Each client's checks are offset by a stable fraction of the interval, so that clients are
    not all read at once."""

    workers: int = Field(default=8, ge=1, le=256)
    """Reconciles that run at once per kind, default 8."""

    sidecar_max_concurrency: int = Field(default=16, ge=1, le=1024)
    """Requests in flight to one sidecar URL, default 16."""

    sidecar_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    """Seconds to open a connection to the sidecar, default 5."""

    sidecar_read_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    """Seconds to wait for the sidecar's response, default 15."""

    retry_initial_seconds: float = Field(default=1.0, gt=0, le=600)
    """First retry delay after a temporary failure, default 1; doubles per failure."""

    retry_maximum_seconds: float = Field(default=60.0, gt=0, le=3600)
    """Maximum retry delay after temporary failures, default 60."""

    log_format: Literal["plain", "json"] = "plain"
    """Log line format: plain text or one JSON object per line."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level logged."""

    liveness_url: str = "http://127.0.0.1:8080/healthz"
    """URL of the liveness endpoint; a Deployment sets host 0.0.0.0 so the kubelet reaches it."""

    peering: str | None = None
    """Name of the kopf peering object for several replicas; unset: one replica, no peering."""

    peering_priority: int | None = Field(default=None, ge=1, le=2**31 - 1)
    """Peering priority of this replica; unset: random, because kopf pauses equal priorities."""

    peering_lifetime_seconds: int = Field(default=20, ge=5, le=600)
    """Seconds a replica's peering keep-alive stays valid, default 20: a killed active replica
    is replaced after at most this long."""

    def validate_liveness_url(self) -> None:
        parsed = urlparse(self.liveness_url)
        if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
            raise ConfigError(
                f"{ENV_PREFIX}LIVENESS_URL={self.liveness_url!r} is invalid: expected "
                "http://HOST:PORT/PATH, for example http://0.0.0.0:8080/healthz"
            )


def load_config(environ: Mapping[str, str] | None = None, **overrides: object) -> OperatorConfig:
    """Read the configuration from ``environ`` (default ``os.environ``) and ``overrides``.

    Raises :class:`ConfigError` naming the variable and what it expects.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name in OperatorConfig.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})

    try:
        config = OperatorConfig.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            variable = ENV_PREFIX + field.upper()
            if field not in OperatorConfig.model_fields:
                problems.append(f"{field}: unknown setting")
                continue
            shown = values.get(field)
            description = (OperatorConfig.model_fields[field].description or "").split("\n")[0]
            problems.append(f"{variable}={shown!r} is invalid ({error['msg']}); {description}")
        raise ConfigError("; ".join(problems)) from None

    if config.retry_initial_seconds > config.retry_maximum_seconds:
        raise ConfigError(
            f"{ENV_PREFIX}RETRY_INITIAL_SECONDS={config.retry_initial_seconds} exceeds "
            f"{ENV_PREFIX}RETRY_MAXIMUM_SECONDS={config.retry_maximum_seconds}; "
            "set the initial delay to at most the maximum"
        )
    config.validate_liveness_url()
    return config
