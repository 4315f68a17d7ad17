"""WatchStream against a real local chunked HTTP stream: line splitting, idle deadline, close()."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from informers._watchstream import WatchStream
from informers.client import ApiClient
from informers.clock import FakeClock
from informers.config import ClientConfig
from informers.errors import ForbiddenError, GoneError, StreamStalledError, TransportError

from ._local_http import Handler, LocalServer

WATCH_PATH = "/api/v1/namespaces/default/pods"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.fixture
def client(server: LocalServer) -> Iterator[ApiClient]:
    c = ApiClient(ClientConfig(host=server.url, qps=-1.0))
    yield c
    c.close()


def pause() -> None:
    time.sleep(0.03)  # lets each piece leave as its own TCP segment


def test_lines_are_reassembled_across_chunk_boundaries(server: LocalServer, client: ApiClient) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        for piece in (
            b'{"type":"ADDED","obj',
            b'ect":{"a":1}}\n{"type":"MODIFIED"}\n{"ty',
            b'pe":"DEL',
            b'ETED"}',
            b"\n",
        ):
            h.chunk(piece)
            pause()
        h.end_chunked()

    with client.watch(WATCH_PATH, {"resourceVersion": "7"}, idle_timeout=5.0) as watch:
        lines = list(watch)
    assert lines == [b'{"type":"ADDED","object":{"a":1}}', b'{"type":"MODIFIED"}', b'{"type":"DELETED"}']
    stats = watch.statistics()
    assert stats.lines == 3 and stats.closed and not stats.stalled
    assert stats.bytes == sum(len(line) + 1 for line in lines)
    (seen,) = server.requests
    assert seen.query == {"resourceVersion": ["7"], "watch": ["true"]}


def test_many_lines_in_one_chunk(server: LocalServer, client: ApiClient) -> None:
    events = [b'{"type":"ADDED","object":{"n":%d}}' % i for i in range(500)]

    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b"\n".join(events) + b"\n")
        h.end_chunked()

    with client.watch(WATCH_PATH, idle_timeout=5.0) as watch:
        assert list(watch) == events


def test_final_line_without_newline_is_delivered(server: LocalServer, client: ApiClient) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b'{"n":1}\n{"n":2}')
        h.end_chunked()

    with client.watch(WATCH_PATH, idle_timeout=5.0) as watch:
        assert list(watch) == [b'{"n":1}', b'{"n":2}']


def test_normal_end_returns_the_connection_for_reuse(server: LocalServer, client: ApiClient) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b'{"n":1}\n')
        h.end_chunked()

    server.json("/api", {"versions": ["v1"]})
    with client.watch(WATCH_PATH, idle_timeout=5.0) as watch:
        assert list(watch) == [b'{"n":1}']
    assert client.statistics().open_watches == 0
    client.get_json("/api")
    # The kept-alive connection served the next request: one client port for both.
    assert len(server.requests) == 2
    assert len({r.client_port for r in server.requests}) == 1


def test_idle_deadline_raises_stream_stalled(server: LocalServer, client: ApiClient) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b'{"type":"ADDED"}\n')
        h.stall()  # half-open from the client's view: connected, silent

    watch = client.watch(WATCH_PATH, idle_timeout=0.3)
    assert next(watch) == b'{"type":"ADDED"}'
    with pytest.raises(StreamStalledError, match="no data for 0.3 s"):
        next(watch)
    stats = watch.statistics()
    assert stats.stalled and stats.closed
    assert client.statistics().open_watches == 0


def test_close_from_another_thread_unblocks_a_blocked_reader(server: LocalServer, client: ApiClient) -> None:
    sent = threading.Event()

    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b'{"n":1}\n')
        sent.set()
        h.stall()

    watch = client.watch(WATCH_PATH, idle_timeout=60.0)
    received: list[bytes] = []
    failures: list[BaseException] = []
    reading = threading.Event()

    def reader() -> None:
        try:
            for line in watch:
                received.append(line)
                reading.set()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    assert reading.wait(5)
    time.sleep(0.1)  # the reader is now blocked in recv() on a silent socket
    assert thread.is_alive()
    watch.close()
    thread.join(5)  # far below the 60 s idle deadline: close() woke it
    assert not thread.is_alive()
    assert received == [b'{"n":1}']
    assert failures == []
    assert watch.closed
    assert client.statistics().open_watches == 0


def test_close_before_iterating_ends_the_iteration(server: LocalServer, client: ApiClient) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b'{"n":1}\n')
        h.stall()

    watch = client.watch(WATCH_PATH, idle_timeout=60.0)
    watch.close()
    watch.close()  # idempotent
    assert list(watch) == []


def test_client_close_closes_open_watches(server: LocalServer) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.stall()

    client = ApiClient(ClientConfig(host=server.url, qps=-1.0))
    watch = client.watch(WATCH_PATH, idle_timeout=60.0)
    assert client.statistics().open_watches == 1
    client.close()
    assert watch.closed
    assert list(watch) == []


def test_dropped_stream_raises_transport_error(server: LocalServer, client: ApiClient) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b'{"n":1}\n{"n":')
        h.drop()  # closes without the terminating chunk

    watch = client.watch(WATCH_PATH, idle_timeout=5.0)
    assert next(watch) == b'{"n":1}'
    with pytest.raises(TransportError, match="connection lost") as caught:
        next(watch)
    assert not isinstance(caught.value, StreamStalledError)


def test_error_answers_to_the_watch_raise_typed_errors(server: LocalServer, client: ApiClient) -> None:
    server.json(
        WATCH_PATH,
        {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 1 (2)"},
        status=410,
    )
    server.json(
        "/apis/apps/v1/deployments",
        {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "deployments.apps is forbidden"},
        status=403,
    )
    with pytest.raises(GoneError, match="too old resource version"):
        client.watch(WATCH_PATH, {"resourceVersion": "1"}, idle_timeout=5.0)
    with pytest.raises(ForbiddenError) as caught:
        client.watch("/apis/apps/v1/deployments", idle_timeout=5.0)
    assert caught.value.method == "GET" and caught.value.path == "/apis/apps/v1/deployments"
    assert client.statistics().open_watches == 0


def test_watch_is_throttled_like_any_request(server: LocalServer) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.end_chunked()

    clock = FakeClock()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    client = ApiClient(ClientConfig(host=server.url, qps=4.0, burst=1), clock=clock, sleep=sleep)
    for _ in range(3):
        with client.watch(WATCH_PATH, idle_timeout=5.0) as watch:
            assert list(watch) == []
    assert waits == [0.25, 0.25]
    client.close()


def test_watch_stream_is_its_own_iterator(server: LocalServer, client: ApiClient) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b"a\nb\n")
        h.end_chunked()

    watch = client.watch(WATCH_PATH, idle_timeout=5.0)
    assert isinstance(watch, WatchStream)
    assert iter(watch) is watch
    assert next(watch) == b"a"
    assert list(watch) == [b"b"]


def test_close_between_lines_drops_the_rest_of_the_chunk(server: LocalServer, client: ApiClient) -> None:
    @server.route(WATCH_PATH)
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b"a\nb\nc\n")
        h.stall()

    watch = client.watch(WATCH_PATH, idle_timeout=60.0)
    assert next(watch) == b"a"
    watch.close()
    assert list(watch) == []
    assert watch.statistics().lines == 1
