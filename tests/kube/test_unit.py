"""Unit tests of KubeClient without an API server, on httpx.MockTransport."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

import experio_sso.kube as kube_package
from experio_sso.kube import (
    CONFIGMAPS,
    SECRETS,
    AlreadyExists,
    Backoff,
    ClusterConnection,
    Conflict,
    Credentials,
    Forbidden,
    Gone,
    Invalid,
    KubeClient,
    KubeError,
    MetadataEvent,
    NotFound,
    Unauthorized,
    Unavailable,
)
from experio_sso.kube._errors import MAX_EXCERPT_LENGTH, RequestContext, error_from_status

Handler = Callable[[httpx.Request], httpx.Response]


class FakeConfiguration:
    """Stands in for kubernetes.client.Configuration: hands out one token after another."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    def get_api_key_with_prefix(self, identifier: str, alias: str | None = None) -> str:
        token = self.tokens[min(self.calls, len(self.tokens) - 1)]
        self.calls += 1
        return f"Bearer {token}"


def make_client(handler: Handler, *tokens: str, **options: Any) -> KubeClient:
    connection = ClusterConnection(
        server="https://kube.invalid",
        ssl_context=ssl.create_default_context(),
        credentials=Credentials(FakeConfiguration(*(tokens or ("token",)))),
        source="test",
    )
    return KubeClient(connection, transport=httpx.MockTransport(handler), **options)


def status(code: int, reason: str, message: str = "", **details: Any) -> httpx.Response:
    body = {"kind": "Status", "code": code, "reason": reason, "message": message}
    if details:
        body["details"] = details
    return httpx.Response(code, json=body)


def metadata(name: str, uid: str, version: str) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": version},
    }


def watch_lines(*events: tuple[str, dict[str, Any]]) -> httpx.Response:
    lines = "".join(json.dumps({"type": kind, "object": item}) + "\n" for kind, item in events)
    return httpx.Response(200, content=lines.encode())


ERROR_CASES = [
    ("404 is NotFound", 404, "NotFound", {}, False, NotFound),
    ("409 AlreadyExists is AlreadyExists", 409, "AlreadyExists", {}, False, AlreadyExists),
    ("409 Conflict is Conflict", 409, "Conflict", {}, False, Conflict),
    ("401 is Unauthorized", 401, "Unauthorized", {}, False, Unauthorized),
    ("403 is Forbidden", 403, "Forbidden", {}, False, Forbidden),
    ("410 is Gone", 410, "Expired", {}, False, Gone),
    ("422 with causes is Invalid", 422, "Invalid", {"causes": [{"field": "a"}]}, False, Invalid),
    ("422 on a JSON patch without causes is Conflict", 422, "Invalid", {}, True, Conflict),
    ("422 on a merge patch without causes is Invalid", 422, "Invalid", {}, False, Invalid),
    ("400 is Invalid", 400, "BadRequest", {}, False, Invalid),
    ("429 is Unavailable", 429, "TooManyRequests", {"retryAfterSeconds": 3}, False, Unavailable),
    ("500 is Unavailable", 500, "InternalError", {}, False, Unavailable),
    ("503 is Unavailable", 503, "ServiceUnavailable", {}, False, Unavailable),
    ("405 is KubeError", 405, "MethodNotAllowed", {}, False, KubeError),
]


@pytest.mark.parametrize(
    ("code", "reason", "details", "json_patch", "expected"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_status_mapping(
    code: int, reason: str, details: dict[str, Any], json_patch: bool, expected: type[KubeError]
) -> None:
    context = RequestContext("patch", "configmaps", "ns", "a", json_patch=json_patch)
    body = {"kind": "Status", "code": code, "reason": reason, "message": "m", "details": details}

    error = error_from_status(code, body, context)

    assert type(error) is expected
    assert error.status == code
    assert error.retryable == (expected is Unavailable)


def test_retry_after_is_kept() -> None:
    body = {"code": 429, "reason": "TooManyRequests", "details": {"retryAfterSeconds": 3}}

    error = error_from_status(429, body, RequestContext("get", "secrets"))

    assert isinstance(error, Unavailable)
    assert error.retry_after == 3.0


def test_foreign_body_is_cut_short() -> None:
    error = error_from_status(502, None, RequestContext("get", "secrets"), raw_text="x" * 5000)

    assert isinstance(error, Unavailable)
    assert len(str(error)) < MAX_EXCERPT_LENGTH + 100
    assert str(error).endswith("...(cut)")


TRANSPORT_ERRORS = [
    httpx.ConnectError("connection refused"),
    httpx.ConnectTimeout("connect timed out"),
    httpx.ReadTimeout("read timed out"),
    httpx.ReadError("connection reset"),
    httpx.RemoteProtocolError("peer closed connection"),
    httpx.PoolTimeout("no free connection"),
]


@pytest.mark.parametrize("raised", TRANSPORT_ERRORS, ids=lambda e: type(e).__name__)
async def test_transport_errors_become_unavailable(raised: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    client = make_client(handler)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: client.get(CONFIGMAPS, "ns", "a"),
        lambda: client.list(CONFIGMAPS, None),
        lambda: client.create(CONFIGMAPS, "ns", {"metadata": {"name": "a"}}),
        lambda: client.patch(CONFIGMAPS, "ns", "a", []),
        lambda: client.delete(CONFIGMAPS, "ns", "a"),
        lambda: client.read_secret_key("ns", "a", "b"),
    ]
    for call in calls:
        with pytest.raises(Unavailable) as caught:
            await call()
        assert caught.value.__cause__ is raised
    await client.aclose()


async def test_non_json_answer_becomes_kube_error() -> None:
    client = make_client(lambda request: httpx.Response(200, content=b"<html>proxy</html>"))

    with pytest.raises(KubeError) as caught:
        await client.get(CONFIGMAPS, "ns", "a")

    assert "not valid JSON" in str(caught.value)
    assert "proxy" not in str(caught.value)


async def test_unauthorized_refreshes_token_once() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer old":
            return status(401, "Unauthorized")
        return httpx.Response(200, json={"metadata": {"name": "a"}})

    client = make_client(handler, "old", "new")

    assert await client.get(CONFIGMAPS, "ns", "a") == {"metadata": {"name": "a"}}
    assert seen == ["Bearer old", "Bearer new"]
    await client.aclose()


async def test_unauthorized_twice_raises() -> None:
    client = make_client(lambda request: status(401, "Unauthorized"), "old", "new")

    with pytest.raises(Unauthorized):
        await client.get(CONFIGMAPS, "ns", "a")
    await client.aclose()


async def test_list_starts_over_when_continue_expires() -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url.params.get("continue")))
        continue_token = request.url.params.get("continue")
        if continue_token is None:
            token = "first" if len(requests) == 1 else "second"
            return httpx.Response(
                200,
                json={"metadata": {"continue": token}, "items": [{"metadata": {"name": "a"}}]},
            )
        if continue_token == "first":
            return status(410, "Expired", "The provided continue parameter is too old")
        return httpx.Response(
            200, json={"metadata": {"resourceVersion": "9"}, "items": [{"metadata": {"name": "b"}}]}
        )

    client = make_client(handler, page_size=1)
    items = await client.list(CONFIGMAPS, "ns")
    await client.aclose()

    assert [item["metadata"]["name"] for item in items] == ["a", "b"]
    assert requests == ["None", "first", "None", "second"]


async def collect(client: KubeClient, count: int) -> list[MetadataEvent]:
    events: list[MetadataEvent] = []
    async with asyncio.timeout(5), contextlib.aclosing(client.watch_metadata(SECRETS, "ns")) as it:
        async for event in it:
            events.append(event)
            if len(events) == count:
                break
    return events


async def test_watch_relists_after_gone_and_reports_the_difference() -> None:
    lists = iter(
        [
            [metadata("a", "ua", "1"), metadata("b", "ub", "1"), metadata("r", "ur1", "1")],
            [metadata("a", "ua", "5"), metadata("c", "uc", "4"), metadata("r", "ur2", "4")],
        ]
    )
    watches = iter(
        [
            watch_lines(
                ("BOOKMARK", metadata("", "", "2")),
                ("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "old"}),
            ),
            watch_lines(("MODIFIED", metadata("c", "uc", "6"))),
        ]
    )
    watch_versions: list[str] = []
    accepts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        accepts.append(request.headers["Accept"])
        if request.url.params.get("watch") == "1":
            watch_versions.append(request.url.params["resourceVersion"])
            assert request.url.params["allowWatchBookmarks"] == "true"
            return next(watches)
        return httpx.Response(
            200, json={"metadata": {"resourceVersion": "1"}, "items": next(lists)}
        )

    client = make_client(handler)
    events = await collect(client, 9)
    await client.aclose()

    assert [(e.type, e.name, e.resource_version) for e in events] == [
        ("ADDED", "a", "1"),
        ("ADDED", "b", "1"),
        ("ADDED", "r", "1"),
        ("DELETED", "b", "1"),
        ("DELETED", "r", "1"),
        ("MODIFIED", "a", "5"),
        ("ADDED", "c", "4"),
        ("ADDED", "r", "4"),
        ("MODIFIED", "c", "6"),
    ]
    assert watch_versions == ["1", "1"]
    assert all("as=PartialObjectMetadata" in accept for accept in accepts)


async def test_watch_resumes_from_last_version_after_broken_stream() -> None:
    responses = iter(
        [
            httpx.Response(200, json={"metadata": {"resourceVersion": "3"}, "items": []}),
            watch_lines(("ADDED", metadata("a", "ua", "7")), ("BOOKMARK", metadata("", "", "8"))),
            watch_lines(("MODIFIED", metadata("a", "ua", "9"))),
        ]
    )
    versions: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        versions.append(request.url.params.get("resourceVersion"))
        return next(responses)

    client = make_client(handler, watch_backoff=Backoff(initial=0.01, maximum=0.01))
    events = await collect(client, 2)
    await client.aclose()

    assert [(e.type, e.resource_version) for e in events] == [("ADDED", "7"), ("MODIFIED", "9")]
    assert versions == [None, "3", "8"]


async def test_watch_logs_one_warning_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="experio_sso.kube")
    failures = 4

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal failures
        if failures:
            failures -= 1
            raise httpx.ConnectError("connection refused")
        if request.url.params.get("watch") == "1":
            return watch_lines(("ADDED", metadata("a", "ua", "2")))
        return httpx.Response(200, json={"metadata": {"resourceVersion": "1"}, "items": []})

    client = make_client(handler, watch_backoff=Backoff(initial=0.01, maximum=0.02))
    events = await collect(client, 1)
    await client.aclose()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if "resumed after" in r.getMessage()]
    assert [e.name for e in events] == ["a"]
    assert len(warnings) == 1
    assert "retrying in 0.0 seconds" in warnings[0]
    assert "ConnectError" in warnings[0]
    assert len(infos) == 1
    assert "4 failed attempts" in infos[0]


async def test_watch_raises_forbidden() -> None:
    client = make_client(lambda request: status(403, "Forbidden", "cannot list secrets"))

    with pytest.raises(Forbidden):
        await collect(client, 1)
    await client.aclose()


def test_public_names_are_exported() -> None:
    for name in kube_package.__all__:
        assert hasattr(kube_package, name), name
    public = {name for name in vars(kube_package) if not name.startswith("_")}
    assert public - set(kube_package.__all__) == set()
