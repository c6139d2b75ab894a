"""Configuration comes from EXPERIO_SSO_* variables; bad values name the variable."""

from __future__ import annotations

import pytest

from experio_sso.config import ConfigError, load_config


def test_defaults_without_variables() -> None:
    config = load_config({})

    assert config.namespace is None
    assert config.drift_interval_seconds == 300
    assert config.liveness_url.startswith("http://127.0.0.1:")
    assert config.peering is None


def test_variables_are_read_and_converted() -> None:
    config = load_config(
        {
            "EXPERIO_SSO_NAMESPACE": "shop",
            "EXPERIO_SSO_DRIFT_INTERVAL_SECONDS": "60",
            "EXPERIO_SSO_LOG_FORMAT": "json",
        }
    )

    assert config.namespace == "shop"
    assert config.drift_interval_seconds == 60.0
    assert config.log_format == "json"


def test_overrides_win_over_variables() -> None:
    config = load_config({"EXPERIO_SSO_NAMESPACE": "shop"}, namespace="other")

    assert config.namespace == "other"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EXPERIO_SSO_DRIFT_INTERVAL_SECONDS", "soon"),
        ("EXPERIO_SSO_DRIFT_INTERVAL_SECONDS", "1"),
        ("EXPERIO_SSO_WORKERS", "0"),
        ("EXPERIO_SSO_LOG_FORMAT", "xml"),
        ("EXPERIO_SSO_LIVENESS_URL", "tcp://0.0.0.0"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config({variable: value})

    assert variable in str(error.value)
    assert value in str(error.value)


def test_initial_retry_above_maximum_is_rejected() -> None:
    with pytest.raises(ConfigError, match="EXPERIO_SSO_RETRY_INITIAL_SECONDS"):
        load_config(
            {"EXPERIO_SSO_RETRY_INITIAL_SECONDS": "90", "EXPERIO_SSO_RETRY_MAXIMUM_SECONDS": "60"}
        )
