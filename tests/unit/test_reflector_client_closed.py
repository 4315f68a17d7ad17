"""A closed ``ApiClient`` stops the reflector's loop at once: ``ClientClosedError`` is "stop", not a
transport failure to back off from and retry (it is no longer a ``TransportError``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from informers._backoff import Backoff
from informers._reflector import Reflector
from informers._watcher import Watcher
from informers.client import ApiClient
from informers.config import ClientConfig
from informers.events import WatchEvent
from informers.resources import Resource

from ._local_http import LocalServer

PODS = Resource("", "v1", "pods", "Pod", namespaced=True)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


def _reflector(client: ApiClient) -> Reflector:
    def apply(events: list[WatchEvent]) -> None:
        pass

    return Reflector(client, PODS, apply, watcher=Watcher(), backoff=Backoff(60.0, 60.0))


def test_a_closed_client_ends_the_loop_without_backoff(server: LocalServer) -> None:
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0))
    client.close()
    reflector = _reflector(client)
    thread = threading.Thread(target=reflector.run)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()  # a 60 s backoff would have kept it waiting
    assert reflector.statistics().backoffs == 0 and reflector.last_error is None
    assert server.requests == []


def test_closing_the_client_while_it_waits_for_retry_after_ends_the_loop(server: LocalServer) -> None:
    server.route("/api/v1/pods")(lambda h: h.send_body(429, b"", headers={"Retry-After": "60"}))
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0))
    reflector = _reflector(client)
    thread = threading.Thread(target=reflector.run)
    thread.start()
    while not server.requests:
        threading.Event().wait(0.01)
    client.close()
    thread.join(5)
    assert not thread.is_alive()
    assert reflector.statistics().backoffs == 0 and reflector.last_error is None
