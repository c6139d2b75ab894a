"""read_secret_key, and that no Secret value reaches a log record or an exception message."""

from __future__ import annotations

import base64
import logging

import httpx
import pytest

from experio_sso.kube import (
    SECRETS,
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    KubeClient,
    KubeError,
    load_connection,
)
from tests.kube.conftest import SECRET_VALUE, SECRET_VALUE_BASE64, RecordingTransport, secret_body
from tests.support.control_plane import ControlPlane


async def test_read_secret_key_ok(kube: KubeClient, namespace: str) -> None:
    created = await kube.create(SECRETS, namespace, secret_body("idp", clientSecret=SECRET_VALUE))

    read = await kube.read_secret_key(namespace, "idp", "clientSecret")

    assert read.status == "ok"
    assert read.value is not None
    assert read.value.get_secret_value() == SECRET_VALUE
    assert read.uid == created["metadata"]["uid"]
    assert read.resource_version == created["metadata"]["resourceVersion"]
    assert SECRET_VALUE not in repr(read)
    assert SECRET_VALUE not in str(read)


async def test_read_secret_key_secret_not_found(kube: KubeClient, namespace: str) -> None:
    read = await kube.read_secret_key(namespace, "absent", "clientSecret")

    assert read.status == "secret_not_found"
    assert read.value is None
    assert read.uid is None
    assert read.resource_version is None


async def test_read_secret_key_key_missing(kube: KubeClient, namespace: str) -> None:
    created = await kube.create(SECRETS, namespace, secret_body("idp", other=SECRET_VALUE))

    read = await kube.read_secret_key(namespace, "idp", "clientSecret")

    assert read.status == "key_missing"
    assert read.value is None
    assert read.uid == created["metadata"]["uid"]


async def test_read_secret_key_without_data(kube: KubeClient, namespace: str) -> None:
    await kube.create(SECRETS, namespace, {"metadata": {"name": "bare"}})

    read = await kube.read_secret_key(namespace, "bare", "clientSecret")

    assert read.status == "key_missing"


async def test_read_secret_key_empty(kube: KubeClient, namespace: str) -> None:
    await kube.create(SECRETS, namespace, secret_body("idp", clientSecret=""))

    read = await kube.read_secret_key(namespace, "idp", "clientSecret")

    assert read.status == "empty"
    assert read.value is None
    assert read.resource_version is not None


async def test_read_secret_key_not_text(kube: KubeClient, namespace: str) -> None:
    body = {"metadata": {"name": "binary"}, "data": {"key": base64.b64encode(b"\xff\xfe").decode()}}
    await kube.create(SECRETS, namespace, body)

    with pytest.raises(Invalid) as caught:
        await kube.read_secret_key(namespace, "binary", "key")

    assert 'key "key" is not UTF-8 text' in str(caught.value)


async def test_secret_values_never_in_logs_or_errors(
    cluster: ControlPlane, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connection = await load_connection(str(cluster.kubeconfig))
    transport = RecordingTransport(httpx.AsyncHTTPTransport(verify=connection.ssl_context))
    client = KubeClient(connection, transport=transport)
    errors: list[KubeError] = []
    try:
        await client.create(SECRETS, namespace, secret_body("idp", clientSecret=SECRET_VALUE))

        with pytest.raises(AlreadyExists) as exists:
            await client.create(SECRETS, namespace, secret_body("idp", clientSecret=SECRET_VALUE))
        errors.append(exists.value)

        # The API server rejects invalid base64 with the whole patched Secret in its message.
        with pytest.raises(Invalid) as echoed:
            await client.patch(SECRETS, namespace, "idp", {"data": {"other": "not base64!"}})
        errors.append(echoed.value)

        with pytest.raises(Invalid) as bad_key:
            await client.patch(SECRETS, namespace, "idp", {"stringData": {"bad key": SECRET_VALUE}})
        errors.append(bad_key.value)

        with pytest.raises(Conflict) as failed_test:
            await client.patch(
                SECRETS,
                namespace,
                "idp",
                [{"op": "test", "path": "/data/clientSecret", "value": "d3Jvbmc="}],
                patch_type="json",
            )
        errors.append(failed_test.value)

        read = await client.read_secret_key(namespace, "idp", "clientSecret")
        assert read.value is not None
        assert read.value.get_secret_value() == SECRET_VALUE
        await client.delete(SECRETS, namespace, "idp")
    finally:
        await client.aclose()

    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    outsider = await KubeClient.connect(
        str(cluster.service_account_kubeconfig(namespace, "nobody"))
    )
    try:
        with pytest.raises(Forbidden) as forbidden:
            await outsider.create(SECRETS, namespace, secret_body("x", key=SECRET_VALUE))
        errors.append(forbidden.value)
    finally:
        await outsider.aclose()

    # The echo is real: the raw response contains the value that the exception leaves out.
    assert any(SECRET_VALUE_BASE64.encode() in body for _, body in transport.bodies)
    assert "withheld because it may contain Secret data" in str(echoed.value)
    assert echoed.value.fields == ("patch",)
    assert caplog.records
    for error in errors:
        for text in (str(error), repr(error)):
            assert SECRET_VALUE not in text
            assert SECRET_VALUE_BASE64 not in text
    for record in caplog.records:
        assert SECRET_VALUE not in record.getMessage()
        assert SECRET_VALUE_BASE64 not in record.getMessage()
