"""Hostile input through a rewriting proxy in front of the real apiserver (issue 10, item 2).

For the LIST, streaming-list and watch paths, the proxy replaces one real answer (or line) with
something the apiserver would not send: a body that is not JSON, one cut mid-object, a partial
item, an unknown event type, an ERROR event with a non-410 Status (500, 403, 503 of 8 MiB, a code
that is not a number, an object instead of a Status), a line of 8 MiB, a line that never ends, an
error status or an HTML page instead of the answer, a resourceVersion the server cannot parse.
Real objects near etcd's 1.5 MB limit are listed, streamed and watched; writes over it are refused
once. Each scenario asserts:

* the informer saw a typed error (one of ``informers.errors``), logged as such;
* bounded retries: the proxy counts exactly the requests the recovery needs, no more;
* nothing lost: at the end the cache equals the server by name, UID, resourceVersion and content;
* the cache is never corrupted: every notified object is whole;
* every error text and log line is bounded in size and never quotes object contents.

(``test_informer_malformed`` injects extra garbage lines between real events; here the hostile
answer *replaces* a real one, so the informer must also get the lost event back.)
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
import pytest

from controllers.circuit import CircuitState
from controllers.writer import ApiWriter, WriterOptions
from informers.client import ApiClient
from informers.errors import RequestTooLargeError
from informers.informer import InformerOptions, SharedInformer
from informers.resources import Resource
from informers.testing import ControlPlane

from .hostile_support import WholeObjects, assert_errors_safe, wait_cache_is_server
from .injecting_proxy import Cut, Hold, InjectingProxy, Reply
from .support import api_client, wait_for

pytestmark = pytest.mark.integration

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
MiB = 1024 * 1024


@pytest.fixture
def secret() -> str:
    """A value only object data carries: it must never show up in an error or a log line."""
    return f"s3cr3t{secrets.token_hex(12)}"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="informers")
    return caplog


@pytest.fixture
def proxy(control_plane: ControlPlane) -> Iterator[InjectingProxy]:
    with InjectingProxy(control_plane) as p:
        yield p


@pytest.fixture
def client(proxy: InjectingProxy, tmp_path: Any) -> Iterator[ApiClient]:
    with api_client(proxy.kubeconfig(tmp_path)) as c:
        yield c


def cm(name: str, secret: str, n: int = 0) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"s": secret, "n": str(n)}}


def cm_content(obj: Mapping[str, Any]) -> Any:
    return obj.get("data")


def informer_for(client: ApiClient, namespace: str, *, streaming: bool, page_size: int = 500) -> SharedInformer:
    options = InformerOptions(
        streaming_list=streaming,
        page_size=page_size,
        progress_check_interval=None,  # its LISTs would blur the proxy's counts
        watch_timeout_range=(240, 300),  # no watch ends on its own during a test
        backoff_initial=0.05,
        backoff_cap=0.2,
    )
    return SharedInformer(client, CONFIGMAPS, namespace=namespace, options=options)


def populate(plane: ControlPlane, namespace: str, secret: str, count: int, prefix: str = "pre") -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(count):
        plane.request_json("POST", path, cm(f"{prefix}-{i:02d}", secret, i))


def churn(plane: ControlPlane, namespace: str, secret: str) -> None:
    """Creates, an update and a delete after the fault: the informer must keep up with them."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(3):
        plane.request_json("POST", path, cm(f"after-{i}", secret, i))
    obj = plane.request_json("GET", f"{path}/after-0")
    obj["data"]["n"] = "updated"
    plane.request_json("PUT", f"{path}/after-0", obj)
    plane.request_json("DELETE", f"{path}/after-1")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


# --- the LIST path -------------------------------------------------------------------------------


def _not_json(body: bytes) -> bytes:
    return b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def _truncated(body: bytes) -> bytes:
    return body[: len(body) // 2]  # the connection ends there: a short but "complete" answer


def _declared_length_cut(body: bytes) -> bytes:
    return Cut(body[: len(body) // 2])  # Content-Length says more: the client sees a broken read


def _items_not_a_list(body: bytes) -> bytes:
    return orjson.dumps({**orjson.loads(body), "items": {"not": "a list"}})


def _partial_item(body: bytes) -> bytes:
    decoded = orjson.loads(body)
    decoded["items"][1]["metadata"] = {"uid": "x"}  # an object without its name
    return orjson.dumps(decoded)


LIST_HOSTILITY: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "not-json": (_not_json, "MalformedResponseError"),
    "truncated-mid-object": (_truncated, "MalformedResponseError"),
    "declared-length-cut": (_declared_length_cut, "TransportError"),
    "items-not-a-list": (_items_not_a_list, "MalformedResponseError"),
    "partial-item": (_partial_item, "MalformedResponseError"),
}


EXPIRED = Reply(410, orjson.dumps(_status(410, "Expired", "too old resource version: 1 (2)")))


@pytest.mark.parametrize("hostility", sorted(LIST_HOSTILITY))
def test_list_answers(
    control_plane: ControlPlane,
    namespace: str,
    proxy: InjectingProxy,
    client: ApiClient,
    secret: str,
    logs: pytest.LogCaptureFixture,
    hostility: str,
) -> None:
    """The first LIST gets a 410 (so the relist is a consistent read, which the apiserver pages;
    the first list, from the watch cache, comes in one page), then the first two answers to its
    continue pages are broken: the page is fetched again with the same token, the pages before it
    are kept, and the cache is replaced only by the whole list."""
    rewrite, expected = LIST_HOSTILITY[hostility]
    corrupt = 2
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    populate(control_plane, namespace, secret, 12)
    expired = [0]
    left = [corrupt]

    def answer(kind: str, request_path: str) -> Reply | None:
        if kind != "list" or expired[0]:
            return None
        expired[0] += 1
        return EXPIRED

    def hostile(request_path: str, body: bytes) -> bytes:
        if left[0] == 0 or "continue=" not in request_path:
            return body
        left[0] -= 1
        return rewrite(body)

    proxy.answer = answer
    proxy.rewrite_body = hostile
    informer = informer_for(client, namespace, streaming=False, page_size=5)
    whole = WholeObjects(lambda o: o["data"]["s"] == secret)
    informer.add_handler(on_notification=whole, inline=True)  # called as the cache changes
    informer.start()
    try:
        assert informer.wait_synced_blocking(30)
        assert len(informer.store) == 12  # never a list of the pages before the broken one
        churn(control_plane, namespace, secret)
        wait_cache_is_server(informer, control_plane, path, cm_content)
        stats = informer.statistics()
        counts = proxy.counts()
        assert left[0] == 0 and proxy.rewritten == corrupt
        assert stats.watcher.list_pages == 3, stats.watcher  # 12 objects, 5 a page
        # Each broken answer costs exactly one more request of the same page: no new list.
        assert counts == {"list": 1 + 3 + corrupt, "watch": 1}, counts
        assert dict(stats.watcher.relist_causes) == {"gone": 1}, stats.watcher
        assert whole.notes >= 12 and not whole.partial, whole.partial
        types = assert_errors_safe(logs.records, [stats.watcher.last_error, stats.reflector.last_error], secret)
        if expected == "TransportError":  # the client repeats a GET whose answer broke off
            assert client.statistics().connection_retries == corrupt
            assert types == ["ExpiredError"] and stats.reflector.backoffs == 1
        else:
            assert types == ["ExpiredError"] + [expected] * corrupt, types
            assert stats.watcher.list_retries == corrupt
            assert stats.reflector.backoffs == 1 + corrupt  # each failure waited out before the next request
    finally:
        informer.stop()


def test_list_answers_broken_again_and_again_back_off_to_the_cap(
    control_plane: ControlPlane,
    namespace: str,
    proxy: InjectingProxy,
    client: ApiClient,
    secret: str,
    logs: pytest.LogCaptureFixture,
) -> None:
    """Eight broken LIST answers in a row: eight requests more, each after a longer wait, up to
    the cap; then the list goes through and nothing is lost."""
    corrupt = 8
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    populate(control_plane, namespace, secret, 3)
    left = [corrupt]

    def hostile(request_path: str, body: bytes) -> bytes:
        if left[0] == 0:
            return body
        left[0] -= 1
        return body[: len(body) // 3]

    proxy.rewrite_body = hostile
    options = InformerOptions(
        streaming_list=False, progress_check_interval=None, backoff_initial=0.01, backoff_cap=0.16
    )
    informer = SharedInformer(client, CONFIGMAPS, namespace=namespace, options=options)
    informer.start()
    try:
        assert informer.wait_synced_blocking(30)
        wait_cache_is_server(informer, control_plane, path, cm_content)
        stats = informer.statistics()
        assert proxy.counts() == {"list": 1 + corrupt, "watch": 1}
        assert stats.reflector.backoffs == corrupt and stats.backoff.total_failures == corrupt
        assert stats.backoff.next_base_delay == pytest.approx(0.16)  # doubled up to the cap
        types = assert_errors_safe(logs.records, [stats.watcher.last_error], secret)
        assert types == ["MalformedResponseError"] * corrupt
    finally:
        informer.stop()


# --- watch lines (live events and the initial events of a streaming list) --------------------------


def _error_event(status: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": status})


def _retype(line: bytes, etype: str) -> bytes:
    event = orjson.loads(line)
    event["type"] = etype
    return orjson.dumps(event)


LINE_HOSTILITY: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated-mid-object": (lambda line: Cut(line[: len(line) // 2]), "MalformedResponseError"),
    "not-json": (lambda line: b"\x1f\x8b\x08" + line, "MalformedResponseError"),
    "unknown-type": (lambda line: _retype(line, "UPSERTED"), "MalformedResponseError"),
    "unknown-type-of-8MiB": (lambda line: _retype(line, "U" * (8 * MiB)), "MalformedResponseError"),
    "8MiB-line": (lambda line: line + b" " + b"x" * (8 * MiB), "MalformedResponseError"),
    "endless-line": (lambda line: Hold(b"x" * (40 * MiB)), "MalformedResponseError"),
    "error-500": (
        lambda line: _error_event(_status(500, "InternalError", "etcd cluster is unavailable")),
        "InternalServerError",
    ),
    "error-403": (
        lambda line: _error_event(_status(403, "Forbidden", "configmaps is forbidden: nope")),
        "ForbiddenError",
    ),
    "error-of-8MiB-reason-and-message": (
        lambda line: _error_event(_status(503, "ServiceUnavailable" * (MiB // 18), "m" * (7 * MiB))),
        "ServiceUnavailableError",
    ),
    "error-code-not-a-number": (
        lambda line: _error_event({**_status(500, "InternalError", "odd"), "code": "five hundred"}),
        "InternalServerError",
    ),
    "error-carrying-the-object": (
        lambda line: _error_event({**orjson.loads(line)["object"], "code": 500}),
        "InternalServerError",
    ),
}


def _one_shot(
    fire: Callable[[str, bytes], bool], rewrite: Callable[[bytes], bytes]
) -> tuple[Callable[[str, bytes], bytes], list[int]]:
    fired = [0]

    def hostile(request_path: str, line: bytes) -> bytes:
        if fired[0] or not fire(request_path, line):
            return line
        fired[0] += 1
        return rewrite(line)

    return hostile, fired


@pytest.mark.parametrize("hostility", list(LINE_HOSTILITY))
def test_watch_lines(
    control_plane: ControlPlane,
    namespace: str,
    proxy: InjectingProxy,
    client: ApiClient,
    secret: str,
    logs: pytest.LogCaptureFixture,
    hostility: str,
) -> None:
    """The hostile line replaces the live ADDED event of an object written while watching."""
    rewrite, expected = LINE_HOSTILITY[hostility]
    refused = expected == "ForbiddenError"  # client-go: a refused watch relists
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    populate(control_plane, namespace, secret, 3)
    target = b'"name":"target"'
    proxy.rewrite_stream, fired = _one_shot(lambda p, line: target in line and b'"ADDED"' in line, rewrite)
    informer = informer_for(client, namespace, streaming=False)
    whole = WholeObjects(lambda o: o["data"]["s"] == secret)
    informer.add_handler(on_notification=whole, inline=True)  # called as the cache changes
    informer.start()
    try:
        assert informer.wait_synced_blocking(30)
        control_plane.request_json("POST", path, cm("target", secret))
        wait_for(lambda: fired[0] == 1, 20, "the hostile line")
        wait_for(lambda: informer.store.get(f"{namespace}/target") is not None, 20, "the lost event, re-delivered")
        churn(control_plane, namespace, secret)
        wait_cache_is_server(informer, control_plane, path, cm_content)
        stats = informer.statistics()
        counts = proxy.counts()
        assert counts == {"list": 1 + refused, "watch": 2}, counts  # one re-watch (or relist), no more
        assert stats.watcher.relists == refused, stats.watcher
        restarts = {k: v for k, v in stats.watcher.watch_restarts.items() if v}
        cause = "malformed" if expected == "MalformedResponseError" else "error"
        assert restarts == {cause: 1}, restarts
        assert not whole.partial, whole.partial
        types = assert_errors_safe(logs.records, [stats.watcher.last_error, stats.reflector.last_error], secret)
        assert types == [expected], types
        assert stats.reflector.backoffs == 1  # the failure was waited out before the next request
    finally:
        informer.stop()


@pytest.mark.parametrize("hostility", list(LINE_HOSTILITY))
def test_streaming_list_lines(
    control_plane: ControlPlane,
    namespace: str,
    proxy: InjectingProxy,
    client: ApiClient,
    secret: str,
    logs: pytest.LogCaptureFixture,
    hostility: str,
) -> None:
    """The hostile line replaces the 6th initial event of a streaming list: the informer lists
    once instead (client-go), keeps streaming lists on for the next time, and loses nothing."""
    rewrite, expected = LINE_HOSTILITY[hostility]
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    populate(control_plane, namespace, secret, 12)
    seen = [0]

    def sixth_initial_event(request_path: str, line: bytes) -> bool:
        if "sendInitialEvents=true" not in request_path or b'"type":"ADDED"' not in line:
            return False
        seen[0] += 1
        return seen[0] == 6

    proxy.rewrite_stream, fired = _one_shot(sixth_initial_event, rewrite)
    informer = informer_for(client, namespace, streaming=True)
    whole = WholeObjects(lambda o: o["data"]["s"] == secret)
    informer.add_handler(on_notification=whole, inline=True)  # called as the cache changes
    informer.start()
    try:
        assert informer.wait_synced_blocking(30)
        assert fired[0] == 1
        assert len(informer.store) == 12  # the 5 initial events before the fault were not kept alone
        churn(control_plane, namespace, secret)
        wait_cache_is_server(informer, control_plane, path, cm_content)
        stats = informer.statistics()
        counts = proxy.counts()
        assert counts == {"stream": 1, "list": 1, "watch": 1}, counts
        assert dict(stats.watcher.relist_causes) == {"error": 1}, stats.watcher
        assert stats.watcher.streaming_list, "one hostile line must not turn streaming lists off"
        assert whole.notes >= 12 and not whole.partial, whole.partial
        types = assert_errors_safe(logs.records, [stats.watcher.last_error, stats.reflector.last_error], secret)
        assert types == [expected], types
        assert stats.reflector.backoffs == 1  # the failure was waited out before the next request
    finally:
        informer.stop()


# --- refused or odd answers to the requests themselves ---------------------------------------------

ANSWERS: dict[str, tuple[Reply, str]] = {
    "500-status": (Reply(500, orjson.dumps(_status(500, "InternalError", "boom"))), "InternalServerError"),
    "403-status": (Reply(403, orjson.dumps(_status(403, "Forbidden", "no"))), "ForbiddenError"),
    "429-unusable-retry-after": (
        Reply(429, b"Too many requests, please try again later.\n", "text/plain", {"Retry-After": "soon"}),
        "TooManyRequestsError",
    ),
    "503-of-8MiB-text": (Reply(503, b"busy " * (8 * MiB // 5), "text/plain"), "ServiceUnavailableError"),
    "500-with-an-object-for-body": (
        Reply(500, orjson.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"s": "SECRET"}})),
        "InternalServerError",
    ),
    "200-html": (
        Reply(200, b"<html><body>Welcome to the captive portal</body></html>\n", "text/html"),
        "MalformedResponseError",
    ),
    "200-status-for-a-list": (Reply(200, orjson.dumps(_status(200, "", ""))), "MalformedResponseError"),
}


@pytest.mark.parametrize("answer", list(ANSWERS))
@pytest.mark.parametrize("request_kind", ["list", "watch", "stream"])
def test_odd_answers_to_each_request(
    control_plane: ControlPlane,
    namespace: str,
    proxy: InjectingProxy,
    client: ApiClient,
    secret: str,
    logs: pytest.LogCaptureFixture,
    request_kind: str,
    answer: str,
) -> None:
    """The first LIST, watch or streaming list is answered by the proxy, not the apiserver: an
    error status (with a Status, plain text, 8 MiB of text, an unusable Retry-After, an object
    instead of a Status), an HTML page, or a Status where a list belongs. One typed error, one repeated request, nothing lost."""
    reply, expected = ANSWERS[answer]
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    populate(control_plane, namespace, secret, 4)
    answered = [0]

    def hostile(kind: str, request_path: str) -> Reply | None:
        if kind != request_kind or answered[0]:
            return None
        answered[0] += 1
        return Reply(reply.status, reply.body.replace(b"SECRET", secret.encode()), reply.content_type, reply.headers)

    proxy.answer = hostile
    informer = informer_for(client, namespace, streaming=request_kind == "stream")
    whole = WholeObjects(lambda o: o["data"]["s"] == secret)
    informer.add_handler(on_notification=whole, inline=True)  # called as the cache changes
    informer.start()
    try:
        assert informer.wait_synced_blocking(30)
        churn(control_plane, namespace, secret)
        wait_cache_is_server(informer, control_plane, path, cm_content)
        stats = informer.statistics()
        counts = proxy.counts()
        assert answered[0] == 1
        if request_kind == "list":  # the same page again
            assert counts == {"list": 2, "watch": 1}, counts
            assert stats.watcher.list_retries == 1 and stats.watcher.relists == 0, stats.watcher
        elif request_kind == "watch":  # a refused watch relists (client-go); others re-watch
            refused = expected == "ForbiddenError"
            assert counts == {"list": 1 + refused, "watch": 2}, counts
            assert stats.watcher.relists == refused, stats.watcher
        else:  # a failed streaming list lists once, and streams again next time
            assert counts == {"stream": 1, "list": 1, "watch": 1}, counts
            assert dict(stats.watcher.relist_causes) == {"error": 1}, stats.watcher
            assert stats.watcher.streaming_list
        assert not whole.partial, whole.partial
        types = assert_errors_safe(logs.records, [stats.watcher.last_error, stats.reflector.last_error], secret)
        assert types == [expected], types
        assert stats.reflector.backoffs == 1  # the failure was waited out before the next request
    finally:
        informer.stop()


# --- objects near etcd's 1.5 MB limit, and writes over it ------------------------------------------

PODTEMPLATES = Resource("", "v1", "podtemplates", "PodTemplate", namespaced=True)
NEAR_LIMIT = 1_450_000  # bytes of one env value: the stored object is just under etcd's 1.5 MiB


def big_podtemplate(name: str, secret: str, size: int, version: int = 0) -> dict[str, Any]:
    value = f"{secret}-{version}-".ljust(size, "x")
    container = {"name": "c", "image": "i", "env": [{"name": "BIG", "value": value}]}
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}},
    }


def big_value(obj: Mapping[str, Any]) -> str:
    return str(obj["template"]["spec"]["containers"][0]["env"][0]["value"])


def big_content(obj: Mapping[str, Any]) -> Any:
    value = big_value(obj)
    return len(value), hashlib.sha256(value.encode()).hexdigest()


def podtemplate_informer(client: ApiClient, namespace: str, *, streaming: bool) -> SharedInformer:
    options = InformerOptions(
        streaming_list=streaming,
        page_size=2,
        progress_check_interval=None,
        watch_timeout_range=(240, 300),
        backoff_initial=0.05,
        backoff_cap=0.2,
    )
    return SharedInformer(client, PODTEMPLATES, namespace=namespace, options=options)


@pytest.mark.parametrize("streaming", [False, True], ids=["list", "streaming-list"])
def test_objects_near_the_etcd_limit_are_listed_streamed_and_watched_whole(
    control_plane: ControlPlane,
    namespace: str,
    proxy: InjectingProxy,
    client: ApiClient,
    secret: str,
    logs: pytest.LogCaptureFixture,
    streaming: bool,
) -> None:
    """Real objects of ~1.45 MB each, created through the apiserver: a LIST (limit 2) or a
    streaming list loads them, the watch carries creates, an update and a delete of more of them,
    and nothing is retried, lost or cut."""
    path = f"/api/v1/namespaces/{namespace}/podtemplates"
    for i in range(3):
        control_plane.request_json("POST", path, big_podtemplate(f"big-{i}", secret, NEAR_LIMIT))
    informer = podtemplate_informer(client, namespace, streaming=streaming)
    whole = WholeObjects(lambda o: len(big_value(o)) == NEAR_LIMIT and big_value(o).startswith(secret))
    informer.add_handler(on_notification=whole, inline=True)  # called as the cache changes
    informer.start()
    try:
        assert informer.wait_synced_blocking(60)
        for i in range(3, 5):
            control_plane.request_json("POST", path, big_podtemplate(f"big-{i}", secret, NEAR_LIMIT))
        obj = control_plane.request_json("GET", f"{path}/big-1")
        obj["template"]["spec"]["containers"][0]["env"][0]["value"] = big_value(
            big_podtemplate("big-1", secret, NEAR_LIMIT, version=1)
        )
        control_plane.request_json("PUT", f"{path}/big-1", obj)
        control_plane.request_json("DELETE", f"{path}/big-2")
        final = wait_cache_is_server(informer, control_plane, path, big_content, timeout=60)
        assert sorted(final) == [f"{namespace}/big-{i}" for i in (0, 1, 3, 4)]
        stats = informer.statistics()
        counts = proxy.counts()
        if streaming:
            assert counts == {"stream": 1}, counts
        else:
            assert counts == {"list": stats.watcher.list_pages, "watch": 1}, (counts, stats.watcher)
        assert stats.watcher.errors == 0 and stats.watcher.relists == 0, stats.watcher
        assert whole.notes >= 7 and not whole.partial, whole.partial
        assert assert_errors_safe(logs.records, [], secret) == []
    finally:
        informer.stop()


def test_oversized_writes_are_refused_once_typed_and_leave_the_cache_and_the_circuit_alone(
    control_plane: ControlPlane,
    namespace: str,
    proxy: InjectingProxy,
    client: ApiClient,
    secret: str,
    logs: pytest.LogCaptureFixture,
) -> None:
    """Creates and an update of 1.6 MB (etcd's "request is too large", a 500) and a create of
    3.5 MB (the apiserver's own body limit, a 413), counted at the proxy: one request each, a
    ``RequestTooLargeError`` that quotes nothing of the object, the group's circuit closed, and
    an informer watching meanwhile ends equal to the server. (``test_reliability_regressions``
    covers the breaker for many direct creates.)"""
    logs.set_level(logging.DEBUG, logger="controllers")
    path = f"/api/v1/namespaces/{namespace}/podtemplates"
    control_plane.request_json("POST", path, big_podtemplate("near", secret, NEAR_LIMIT))
    informer = podtemplate_informer(client, namespace, streaming=True)
    informer.start()
    writer = ApiWriter(client, WriterOptions(field_manager="hostile-tests"))
    errors: list[RequestTooLargeError] = []
    try:
        assert informer.wait_synced_blocking(60)
        for i in range(3):
            before = proxy.counts().get("post", 0)
            with pytest.raises(RequestTooLargeError, match="request is too large") as caught:
                writer.create(PODTEMPLATES, big_podtemplate(f"over-{i}", secret, 1_600_000), namespace=namespace)
            assert proxy.counts()["post"] - before == 1  # never retried
            errors.append(caught.value)
        current = writer.get(PODTEMPLATES, "near", namespace=namespace)
        grown = big_podtemplate("near", secret, 1_600_000, version=1)
        current["template"] = grown["template"]
        with pytest.raises(RequestTooLargeError) as caught:
            writer.update(PODTEMPLATES, current, namespace=namespace)
        assert proxy.counts()["put"] == 1
        errors.append(caught.value)
        with pytest.raises(RequestTooLargeError) as caught:
            writer.create(PODTEMPLATES, big_podtemplate("huge", secret, 3_500_000), namespace=namespace)
        assert proxy.counts()["post"] == 4
        errors.append(caught.value)
        assert [e.status for e in errors] == [500, 500, 500, 500, 413], [str(e) for e in errors]
        assert not any(e.retryable for e in errors)
        assert writer.breaker.state("v1") is CircuitState.CLOSED
        assert writer.statistics().retries == 0
        writer.create(PODTEMPLATES, big_podtemplate("small", secret, 100), namespace=namespace)
        final = wait_cache_is_server(informer, control_plane, path, big_content, timeout=60)
        assert sorted(final) == [f"{namespace}/near", f"{namespace}/small"]
        assert final[f"{namespace}/near"][2][0] == NEAR_LIMIT  # the refused update changed nothing
        assert informer.statistics().watcher.errors == 0
        assert_errors_safe(logs.records, [str(e) for e in errors], secret)
    finally:
        writer.close()
        informer.stop()


# --- a resourceVersion the server cannot parse -------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["list", "streaming-list"])
def test_an_event_with_a_resource_version_the_server_cannot_parse_does_not_wedge_the_informer(
    control_plane: ControlPlane,
    namespace: str,
    proxy: InjectingProxy,
    client: ApiClient,
    secret: str,
    logs: pytest.LogCaptureFixture,
    streaming: bool,
) -> None:
    """Versions are opaque, so the informer takes one event's ``x1`` as it comes; but when the
    stream ends right after it, every watch from ``x1`` gets a 500 and every list from it a 400.
    The informer must not re-watch from it forever: after a few 500s it relists, and a list its
    version cannot be read for becomes a consistent read, which ends all doubt."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    populate(control_plane, namespace, secret, 3)

    def unreadable_version(line: bytes) -> bytes:
        event = orjson.loads(line)
        event["object"]["metadata"]["resourceVersion"] = "x1"
        return Cut(orjson.dumps(event) + b"\n")  # a whole line, then the stream ends

    proxy.rewrite_stream, fired = _one_shot(
        lambda p, line: b'"name":"target"' in line and b'"ADDED"' in line, unreadable_version
    )
    informer = informer_for(client, namespace, streaming=streaming)
    informer.start()
    try:
        assert informer.wait_synced_blocking(30)
        control_plane.request_json("POST", path, cm("target", secret))
        wait_for(lambda: fired[0] == 1, 20, "the hostile line")
        churn(control_plane, namespace, secret)
        wait_cache_is_server(informer, control_plane, path, cm_content)
        stats = informer.statistics()
        assert stats.watcher.last_resource_version != "x1"
        assert stats.watcher.streaming_list == streaming, stats.watcher  # a bad version is not a missing feature
        types = assert_errors_safe(logs.records, [stats.watcher.last_error, stats.reflector.last_error], secret)
        assert "InternalServerError" in types, types
        assert len(types) <= 5, types  # a few failures, then a relist that works
        causes = set(stats.watcher.relist_causes)
        assert {"watch-failing", "invalid-resource-version"} <= causes, stats.watcher.relist_causes
    finally:
        informer.stop()
