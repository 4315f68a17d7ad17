"""The fault proxy really passes, cuts, stalls, refuses and delays (against a local echo server)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from informers.testing.proxy import FaultProxy, ProxyMode


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[:2]
    stop.set()
    thread.join(2)
    listener.close()


@pytest.fixture
def proxy(echo_server) -> Iterator[FaultProxy]:
    with FaultProxy(*echo_server) as p:
        yield p


def _connect(proxy: FaultProxy, timeout: float = 2.0) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    return sock


def test_pass_through_forwards_both_ways(proxy):
    with _connect(proxy) as sock:
        sock.sendall(b"hello")
        assert sock.recv(5) == b"hello"
    stats = proxy.statistics()
    assert stats.accepted == 1 and stats.bytes_to_server == 5


def test_cut_resets_live_connections(proxy):
    with _connect(proxy) as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        assert proxy.cut() == 1
        # SO_LINGER 0 on the proxy side: the client sees a reset, not a clean end of stream
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    # New connections work again after a cut.
    with _connect(proxy) as sock:
        sock.sendall(b"y")
        assert sock.recv(1) == b"y"


def test_stall_holds_the_connection_without_forwarding(proxy):
    with _connect(proxy, timeout=0.5) as sock:
        proxy.stall()
        sock.sendall(b"ping")
        with pytest.raises((TimeoutError, socket.timeout)):
            sock.recv(4)
        assert proxy.statistics().active == 1  # held open, not closed: a half-open peer
        proxy.pass_through()
        sock.settimeout(2)
        assert sock.recv(4) == b"ping"  # resumes when switched back


def test_stall_accepts_new_connections_and_forwards_nothing(proxy):
    proxy.stall()
    with _connect(proxy, timeout=0.3) as sock:
        sock.sendall(b"a")
        with pytest.raises((TimeoutError, socket.timeout)):
            sock.recv(1)
    assert proxy.statistics().bytes_to_server == 0


def test_refuse_closes_new_connections(proxy):
    proxy.refuse()
    assert proxy.mode is ProxyMode.REFUSE
    with _connect(proxy) as sock:
        try:
            data = sock.recv(1)
        except ConnectionResetError:
            data = b""
        assert data == b""
    assert proxy.statistics().refused == 1


def test_latency_delays_each_chunk(proxy):
    proxy.set_latency(0.2)
    with _connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"z")
        assert sock.recv(1) == b"z"
        # two hops (to the server and back), each delayed: a lower bound, not a speed claim
        assert time.monotonic() - started >= 0.4


def test_stop_leaves_no_proxy_threads(echo_server):
    proxy = FaultProxy(*echo_server).start()
    sock = _connect(proxy)
    sock.sendall(b"q")
    assert sock.recv(1) == b"q"
    proxy.stop()
    sock.close()
    time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name.startswith("fault-proxy")]
