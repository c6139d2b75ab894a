"""The package's ``__all__`` names exactly its public surface."""

from __future__ import annotations

import types

import experio_sso.sidecar as sidecar


def test_all_names_exist() -> None:
    missing = [name for name in sidecar.__all__ if not hasattr(sidecar, name)]

    assert missing == []


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(sidecar).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }

    assert public == set(sidecar.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(sidecar.__all__) == len(set(sidecar.__all__))


def test_every_exception_derives_from_sidecar_error() -> None:
    exceptions = [
        value
        for name in sidecar.__all__
        if isinstance(value := getattr(sidecar, name), type) and issubclass(value, Exception)
    ]

    assert len(exceptions) == 13
    for exception in exceptions:
        assert issubclass(exception, sidecar.SidecarError)
        assert isinstance(exception.retryable, bool)


def test_retryable_flags() -> None:
    retryable = {
        name
        for name in sidecar.__all__
        if isinstance(value := getattr(sidecar, name), type)
        and issubclass(value, sidecar.SidecarError)
        and value.retryable
    }

    assert retryable == {
        "SidecarUnavailableError",
        "SidecarTimeoutError",
        "UnexpectedResponseError",
    }
