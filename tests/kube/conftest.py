"""Fixtures for the Kubernetes client tests: a connected client and a small CRD with status."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from experio_sso.kube import KubeClient, ResourceKind
from tests.support.control_plane import ControlPlane

GADGET_GROUP = "kube.test.experio.cloud"
GADGETS = ResourceKind(GADGET_GROUP, "v1", "gadgets", "Gadget")
GADGET_CRD = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{GADGET_GROUP}
spec:
  group: {GADGET_GROUP}
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget}}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {{status: {{}}}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {{type: integer, minimum: 1}}
            status:
              type: object
              properties:
                phase: {{type: string}}
"""

SECRET_VALUE = "s3cr3t-Value-9f1c2b7e"
"""A value no test expects to see anywhere except where it reads it on purpose."""
SECRET_VALUE_BASE64 = base64.b64encode(SECRET_VALUE.encode()).decode()


@pytest.fixture(scope="session")
def gadget_crd(cluster: ControlPlane) -> ResourceKind:
    """Install a CRD with a status subresource once per session."""
    cluster.kubectl("apply", "-f", "-", input=GADGET_CRD)
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", f"crd/gadgets.{GADGET_GROUP}"
    )
    return GADGETS


@pytest.fixture
async def kube(cluster: ControlPlane) -> AsyncIterator[KubeClient]:
    """A client with the admin kubeconfig (client certificates)."""
    client = await KubeClient.connect(str(cluster.kubeconfig), timeout=10.0)
    yield client
    await client.aclose()


def secret_body(name: str, **data: str) -> dict[str, Any]:
    """Return a Secret manifest with ``data`` encoded as the API expects."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


class RecordingTransport(httpx.AsyncBaseTransport):
    """Forward requests to a real transport and keep every response body's bytes."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.bodies: list[tuple[str, bytes]] = []
        self.open_streams = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        record = bytearray()
        self.bodies.append((str(request.url), record))  # type: ignore[arg-type]
        inner_stream = response.stream
        transport = self

        class Recording(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                assert isinstance(inner_stream, httpx.AsyncByteStream)
                async for chunk in inner_stream:
                    record.extend(chunk)
                    yield chunk

            async def aclose(self) -> None:
                transport.open_streams -= 1
                assert isinstance(inner_stream, httpx.AsyncByteStream)
                await inner_stream.aclose()

        self.open_streams += 1
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=Recording(),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
