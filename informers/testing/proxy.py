"""A loopback TCP proxy that injects network faults between a client and a server.

Modes, switchable while running: pass through; stall (connections are accepted and held open but no
byte is forwarded either way, like a half-open peer); refuse (new connections are closed at once).
``cut()`` resets every live connection. ``set_latency`` delays each forwarded chunk. TLS passes through
untouched, so a client talks to the apiserver through it with the apiserver's own certificate.
Invariant: after ``stop()`` no proxy thread is left running and every socket is closed.
"""

from __future__ import annotations

import enum
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

__all__ = ["FaultProxy", "ProxyMode", "ProxyStatistics"]

_POLL = 0.05


class ProxyMode(enum.Enum):
    PASS = "pass"
    STALL = "stall"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class ProxyStatistics:
    mode: ProxyMode
    accepted: int
    active: int
    refused: int
    cut: int
    bytes_to_server: int
    bytes_to_client: int


class _Connection:
    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.closed = threading.Event()

    def close(self, reset: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.server):
            try:
                if reset:  # SO_LINGER 0 makes close() send RST: a hard cut, not a clean FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class FaultProxy:
    """Listen on ``127.0.0.1:<port>`` and forward to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((listen_host, 0))
        self._listener.settimeout(_POLL)
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._mode = ProxyMode.PASS
        self._latency = 0.0
        self._connections: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._counts = {"accepted": 0, "refused": 0, "cut": 0, "up": 0, "down": 0}
        self._acceptor: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``: use as the kubeconfig server for a TLS target."""
        return f"https://{self.host}:{self.port}"

    # -- control --------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)
        self._acceptor.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def mode(self) -> ProxyMode:
        return self._mode

    def pass_through(self) -> None:
        """Forward normally (held connections resume)."""
        self._mode = ProxyMode.PASS

    def stall(self) -> None:
        """Accept and hold connections, forwarding nothing: a half-open peer."""
        self._mode = ProxyMode.STALL

    def refuse(self) -> None:
        """Close new connections at once (live ones are untouched; see ``cut``)."""
        self._mode = ProxyMode.REFUSE

    def set_latency(self, seconds: float) -> None:
        """Delay every forwarded chunk by ``seconds``."""
        self._latency = max(0.0, seconds)

    def cut(self) -> int:
        """Reset every live connection; returns how many were cut."""
        with self._lock:
            victims = list(self._connections)
            self._connections.clear()
            self._counts["cut"] += len(victims)
        for conn in victims:
            conn.close(reset=True)
        return len(victims)

    def stop(self) -> None:
        self._stopping.set()
        self.cut()
        if self._acceptor is not None:
            self._acceptor.join(5)
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def statistics(self) -> ProxyStatistics:
        with self._lock:
            return ProxyStatistics(
                mode=self._mode,
                accepted=self._counts["accepted"],
                active=len(self._connections),
                refused=self._counts["refused"],
                cut=self._counts["cut"],
                bytes_to_server=self._counts["up"],
                bytes_to_client=self._counts["down"],
            )

    # -- data path ------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._mode is ProxyMode.REFUSE:
                with self._lock:
                    self._counts["refused"] += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the target is down: behave like it
                continue
            conn = _Connection(client, server)
            with self._lock:
                self._counts["accepted"] += 1
                self._connections.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(target=self._pump, args=(conn,), name="fault-proxy-pump", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, conn: _Connection) -> None:
        peers = {conn.client: (conn.server, "up"), conn.server: (conn.client, "down")}
        held: dict[socket.socket, list[bytes]] = {conn.client: [], conn.server: []}
        try:
            while not conn.closed.is_set() and not self._stopping.is_set():
                if self._stalled():
                    time.sleep(_POLL)  # hold everything: nothing read, nothing forwarded
                    continue
                for sock, chunks in held.items():  # what was read as a stall began goes out now
                    while chunks:
                        self._forward(peers[sock], chunks.pop(0))
                readable, _, _ = select.select(list(peers), [], [], _POLL)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self._stalled():  # the stall began while we waited: hold it
                        held[sock].append(data)
                        continue
                    self._forward(peers[sock], data)
        except (OSError, ValueError):
            pass  # a cut closes the sockets under us
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _stalled(self) -> bool:
        return self._mode is ProxyMode.STALL  # re-read each time: another thread switches it

    def _forward(self, peer: tuple[socket.socket, str], data: bytes) -> None:
        target, direction = peer
        if self._latency:
            time.sleep(self._latency)
        target.sendall(data)
        with self._lock:
            self._counts[direction] += len(data)
