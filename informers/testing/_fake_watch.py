"""One open watch of the fake apiserver, read like ``informers._watchstream.WatchStream``.

``FakeWatchStream`` is an iterable of undecoded event lines (bytes). The store offers it every
committed change of its resource (``offer``, under the store's lock); it keeps the ones its
namespace and selectors match, turning a change that moves an object into or out of the selection
into ADDED or DELETED as the apiserver does, and queues them as lines. The reader blocks on the
store's condition, so ``close()`` from any thread wakes it at once and the iteration ends;
``cut()`` makes the reader raise ``TransportError`` (a dropped connection); while the cluster's
watches are stalled nothing is delivered and, after ``idle_timeout`` seconds of silence, the
reader raises ``StreamStalledError`` exactly as the real stream's idle deadline does. A server
``timeoutSeconds`` ends the stream normally.
Invariant: every line offered before the stream ends is delivered at most once and in commit
order, and after ``close()`` returns no reader stays blocked on this stream.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import orjson

from .._watcher import INITIAL_EVENTS_END_ANNOTATION
from .._watchstream import WatchStreamStatistics
from ..errors import StreamStalledError, TransportError
from ._fake_select import Selector
from ._fake_store import Change, FakeStore, Kind

__all__ = ["FakeWatchStream"]


class FakeWatchStream:
    """An open watch on ``kind`` (optionally one namespace, filtered by ``selector``)."""

    def __init__(
        self,
        store: FakeStore,
        kind: Kind,
        *,
        path: str,
        idle_timeout: float,
        timeout_seconds: float | None,
        namespace: str | None,
        selector: Selector,
        bookmarks: bool,
        stalled: Callable[[], bool],
        on_release: Callable[[FakeWatchStream], None] | None = None,
    ) -> None:
        self.path = path
        self.idle_timeout = idle_timeout
        self.kind = kind
        self.namespace = namespace
        self.selector = selector
        self.bookmarks = bookmarks
        self._store = store
        self._stalled_fn = stalled
        self._on_release = on_release
        now = time.monotonic()
        self._deadline = None if timeout_seconds is None else now + timeout_seconds
        self._last = now
        self._lines: deque[bytes] = deque()
        self._ending = False  # end the stream once the queued lines are read (after an ERROR)
        self._closed = False
        self._cut = False
        self._done = False
        self._released = False
        self._stalled = False
        self._count = self._bytes = 0

    # -- the store's side (called with the store's lock held) -----------------------------------

    def offer(self, change: Change) -> None:
        if self._closed or self._ending or self._done:
            return
        if self.namespace and change.key[0] != self.namespace:
            return
        now_in = self.selector.matches(change.obj)
        was_in = change.old is not None and self.selector.matches(change.old)
        if change.type == "ADDED":
            kind = "ADDED" if now_in else None
        elif change.type == "DELETED":
            kind = "DELETED" if was_in or now_in else None
        elif now_in:
            kind = "MODIFIED" if was_in else "ADDED"
        else:
            kind = "DELETED" if was_in else None
        if kind is not None:
            self.push(kind, change.obj)

    def push(self, event_type: str, obj: Mapping[str, Any]) -> None:
        """Queue one event (the caller holds the store's lock and notifies)."""
        api_version = self.kind.resource.api_version
        if obj.get("apiVersion") != api_version and event_type != "ERROR":
            obj = {**obj, "apiVersion": api_version}
        self._lines.append(orjson.dumps({"type": event_type, "object": obj}))
        if event_type == "ERROR":
            self._ending = True  # the apiserver ends a watch after an ERROR event

    def push_bookmark(self, resource_version: str, *, initial_events_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": resource_version}
        if initial_events_end:
            meta["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
        self.push(
            "BOOKMARK",
            {"kind": self.kind.resource.kind, "apiVersion": self.kind.resource.api_version, "metadata": meta},
        )

    # -- faults ----------------------------------------------------------------------------------

    def cut(self) -> None:
        """End the stream as if the connection dropped: the reader raises ``TransportError``."""
        with self._store.changed:
            if not self._done:
                self._cut = True
            self._store.changed.notify_all()

    # -- the reader's side -----------------------------------------------------------------------

    def __iter__(self) -> FakeWatchStream:
        return self

    def __next__(self) -> bytes:
        failure: Exception | None = None
        changed = self._store.changed
        with changed:
            while True:
                if self._done or self._closed:
                    break
                if self._cut:
                    failure = TransportError(f"watch {self.path}: connection lost (cut by FakeCluster.cut_watches)")
                    break
                now = time.monotonic()
                if self._lines and not self._stalled_fn():
                    line = self._lines.popleft()
                    self._last = now
                    self._count += 1
                    self._bytes += len(line) + 1
                    return line
                if self._ending and not self._lines:
                    break  # after an ERROR event
                if self._deadline is not None and now >= self._deadline:
                    break  # the server's timeoutSeconds: a normal end
                idle_deadline = self._last + self.idle_timeout
                if now >= idle_deadline:
                    self._stalled = True
                    failure = StreamStalledError(
                        f"watch {self.path}: no data for {self.idle_timeout:g} s (stalled or half-open connection)"
                    )
                    break
                wait = idle_deadline - now
                if self._deadline is not None:
                    wait = min(wait, self._deadline - now)
                changed.wait(wait)
            self._done = True
        self._release()
        if failure is not None:
            raise failure
        raise StopIteration

    def close(self) -> None:
        """End the stream; safe from any thread, idempotent, never blocks for long."""
        with self._store.changed:
            self._closed = True
            self._store.changed.notify_all()
        self._release()

    @property
    def closed(self) -> bool:
        return self._closed or self._done

    @property
    def ending(self) -> bool:
        """An ERROR event is queued: the stream ends after it and takes no more changes."""
        return self._ending

    def statistics(self) -> WatchStreamStatistics:
        with self._store.lock:
            return WatchStreamStatistics(
                path=self.path,
                lines=self._count,
                bytes=self._bytes,
                reads=self._count,
                closed=self.closed,
                stalled=self._stalled,
            )

    def _release(self) -> None:
        with self._store.lock:
            if self._released:
                return
            self._released = True
            self._closed = True
            self._store.remove_listener(self.kind, self)
        if self._on_release is not None:
            self._on_release(self)

    def __enter__(self) -> FakeWatchStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
