"""A watch answer read as newline-delimited lines, with an idle deadline and a cross-thread close.

The apiserver streams watch events as JSON objects, one per line, in HTTP chunks that need not
align with lines. ``WatchStream`` reads what the socket has (``read1``), splits on newlines and
yields complete lines as bytes, undecoded. It reads through ``http.client``'s own ``read1`` (which
undoes the chunked framing) rather than urllib3's: urllib3's layer (a generator context manager,
a queue buffer, decoder checks per call) cost ~40 % of the reading CPU at one chunk per event
(bench/peers/optimisations.md, entry 3); an answer with a ``Content-Encoding`` keeps urllib3's
reader, which undoes it. The socket's read timeout is the idle deadline: silence
longer than it raises ``StreamStalledError`` (a stalled or half-open peer). A line longer than
``MAX_LINE_BYTES`` (16 MiB, client-go's limit for one watch object) raises
``MalformedResponseError`` as soon as it is seen, so a line that never ends cannot fill memory.
Invariant: after ``close()`` returns, no thread stays blocked on this stream's socket, and the
connection goes back to the pool only after a clean end of the answer.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

import urllib3
from urllib3.exceptions import HTTPError, ReadTimeoutError

from ._log import get_logger
from .errors import MalformedResponseError, StreamStalledError, TransportError

__all__ = ["MAX_LINE_BYTES", "WatchStream", "WatchStreamStatistics"]

_log = get_logger(__name__)

_READ_SIZE = 64 * 1024  # at most this much per read; read1 returns what has arrived
MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest watch line accepted (client-go's streaming decoder refuses objects above 16 MiB)."""


@dataclass(frozen=True, slots=True)
class WatchStreamStatistics:
    path: str
    lines: int
    bytes: int
    reads: int
    closed: bool
    stalled: bool


class WatchStream:
    """The open answer of a watch request, iterated as complete lines (bytes, without ``\\n``).

    A normal end of the stream ends the iteration; silence longer than ``idle_timeout`` raises
    ``StreamStalledError``; a dropped connection raises ``TransportError``. ``close()`` may be
    called from any thread: a reader blocked on the socket wakes at once and the iteration ends.
    """

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        *,
        path: str,
        idle_timeout: float,
        on_release: Callable[[WatchStream], None] | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        """Wrap an answer opened with ``preload_content=False`` and a read timeout of ``idle_timeout``."""
        self.path = path
        self.idle_timeout = idle_timeout
        self.max_line_bytes = max_line_bytes
        self._response = response
        self._on_release = on_release
        self._lock = threading.Lock()
        self._closed = False
        self._reading = False
        self._released = False
        self._stalled = False
        self._eof = False
        self._lines = 0
        self._bytes = 0
        self._reads = 0
        self._read1 = _lean_read1(response)
        self._iterator = self._iterate()

    def __iter__(self) -> WatchStream:
        return self

    def __next__(self) -> bytes:
        return next(self._iterator)

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End the stream; safe from any thread, idempotent, never blocks on the network."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._reading:
                # The reader owns the response; waking it is enough, it releases on its way out.
                # Under the lock, so the socket cannot have been handed back to the pool meanwhile.
                with contextlib.suppress(ValueError, RuntimeError, OSError):  # released, or no socket: nothing to wake
                    self._response.shutdown()
                return
        self._release(reuse=False)

    def statistics(self) -> WatchStreamStatistics:
        with self._lock:
            return WatchStreamStatistics(
                path=self.path,
                lines=self._lines,
                bytes=self._bytes,
                reads=self._reads,
                closed=self._closed,
                stalled=self._stalled,
            )

    def _release(self, *, reuse: bool) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
            self._closed = True
        if not reuse:
            # A half-read or interrupted answer must not be reused: close the connection first.
            self._response.close()
        self._response.release_conn()
        if self._on_release is not None:
            self._on_release(self)

    def _read(self) -> bytes:
        """The next bytes of the answer; b"" at the end or once closed."""
        with self._lock:
            if self._closed:
                closed_by_user = True
            else:
                closed_by_user = False
                self._reading = True
        if closed_by_user:
            self._release(reuse=False)
            return b""
        failure: BaseException | None = None
        data = b""
        try:
            data = self._read1(_READ_SIZE)
        # HTTPException: a broken chunk (IncompleteRead, a too long size line) from http.client;
        # ValueError: a read on a file closed meanwhile.
        except (HTTPError, http.client.HTTPException, OSError, ValueError) as exc:
            failure = exc
        finally:
            with self._lock:
                self._reading = False
                closed_by_user = self._closed
        if closed_by_user:
            self._release(reuse=False)
            return b""
        if failure is not None:
            self._release(reuse=False)
            if isinstance(failure, (ReadTimeoutError, socket.timeout)):
                with self._lock:
                    self._stalled = True
                _log.info("watch stream stalled", path=self.path, idle_timeout=self.idle_timeout)
                raise StreamStalledError(
                    f"watch {self.path}: no data for {self.idle_timeout:g} s (stalled or half-open connection)"
                ) from failure
            raise TransportError(f"watch {self.path}: connection lost: {failure}") from failure
        if not data:
            self._eof = True
            self._release(reuse=True)  # clean end: the connection may serve the next request
            return b""
        self._reads += 1
        self._bytes += len(data)
        return data

    def _too_long(self, size: int) -> MalformedResponseError:
        self._release(reuse=False)  # the rest of this answer is never read
        _log.info("watch line too long", path=self.path, limit=self.max_line_bytes)
        # Its size only, never its text: it is an object's JSON (a Secret's data, say).
        return MalformedResponseError(
            f"watch {self.path}: a line of more than {self.max_line_bytes} bytes ({size} read so far)"
        )

    def _iterate(self) -> Iterator[bytes]:
        partial: list[bytes] = []  # pieces of a line spread over several reads
        pending = 0  # their total size
        while True:
            data = self._read()
            if not data:
                break
            first, newline, rest = data.partition(b"\n")
            if not newline:
                partial.append(data)
                pending += len(data)
                if pending > self.max_line_bytes:
                    raise self._too_long(pending)
                continue
            if pending + len(first) > self.max_line_bytes:
                raise self._too_long(pending + len(first))
            if partial:
                partial.append(first)
                first = b"".join(partial)
                partial.clear()
            lines = rest.split(b"\n")
            tail = lines.pop()
            if first:
                lines.insert(0, first)
            for line in lines:
                if self._closed:  # close() while the consumer was busy: drop what is left
                    return
                if len(line) > self.max_line_bytes:
                    raise self._too_long(len(line))
                if line:
                    self._lines += 1  # counters have one writer, the iterating thread
                    yield line
            pending = len(tail)
            if tail:
                partial.append(tail)
        if partial and self._eof:
            self._lines += 1
            yield b"".join(partial)  # a final line without its newline


def _lean_read1(response: urllib3.BaseHTTPResponse) -> Callable[[int], bytes]:
    """``read1`` of the ``http.client`` answer under ``response`` when nothing needs urllib3's
    layer (no content coding to undo), else urllib3's own ``read1``."""
    raw = getattr(response, "_fp", None)
    if isinstance(raw, http.client.HTTPResponse) and not response.headers.get("Content-Encoding"):
        return raw.read1
    return response.read1
