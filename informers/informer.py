"""SharedInformer: one list-then-watch loop per resource, a shared indexed cache, and handlers.

``run()`` (async) is the informer's life: it starts the reflector on its one dedicated thread
(blocking HTTP reads), and runs every buffered handler and the resync timer as tasks on the
caller's event loop. The reflector thread applies watch events to the store and, under the same
lock, pushes the resulting notifications into every handler (``handlers.HandlerRegistration``), so
a handler added late gets a replay of the cache and then every later change, with no gap and no
duplicate. The first completed list marks the informer synced; each handler is synced once it has
handled its share of that state. Resync (per handler, minimum 1 s) re-delivers the cache as
``ObjectUpdated(is_resync=True)`` only to handlers whose period is due; a relist delivers
``ObjectUpdated(is_resync=True)`` to every handler for the objects whose resourceVersion did not
change, as client-go does when no handler asks for periodic resync.

The transform (default ``strip_managed_fields``) has one owner, this class: it runs once per
object before the store and the handlers see it. If a transform raises (or returns something that
is not a dict), the object is cached and delivered *untransformed* -- as received from the server
-- and the failure is logged with the key and counted (``statistics().transform_errors``); the
watch goes on. Custom transforms therefore pay for a snapshot of each object (the default one,
which cannot fail, does not). With the default transform or none, the initial list's objects are
never built as dicts here: their JSON goes to the store with ``managedFields`` cut out of the
bytes (``_listbody.parse_item``); handlers decode them from the store when delivered.
Invariant: the store and every handler's view change in the same order; a handler never sees a
notification for a state the store did not hold; the watch resumes only after what the store applied.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
import anyio.abc
import orjson

from . import _bridge
from ._backoff import Backoff, BackoffStatistics
from ._listbody import InitApplyItem, RawInitApply
from ._log import get_logger
from ._progress import ProgressCheck, ProgressStatistics
from ._reflector import Reflector, ReflectorStatistics
from ._watcher import Watcher, WatcherStatistics
from .client import ApiClient
from .clock import SYSTEM_CLOCK, Clock
from .compression import StoreCompression, store_codec
from .events import (
    Apply,
    Bookmark,
    Delete,
    DeletedFinalStateUnknown,
    Init,
    InitApply,
    InitDone,
    ObjectAdded,
    ObjectDeleted,
    WatchEvent,
)
from .handlers import (
    DeferredAdded,
    DeferredUpdated,
    HandlerRegistration,
    HandlerStatistics,
    NotificationHandler,
    Pending,
)
from .indexers import IndexFunc
from .objects import RawObject, object_key, resource_version, strip_managed_fields, uid
from .resources import Resource
from .store import ReplaceBuffer, ReplaceResult, Store, StoreStatistics

__all__ = ["InformerOptions", "InformerStatistics", "ProgressStatistics", "SharedInformer", "Transform"]

_log = get_logger(__name__)

Transform = Callable[[RawObject], RawObject]
"""Edits an object (in place or not) before it is cached; returns the object to cache."""

# How long run() waits for the reflector thread after stopping it (every request in flight is
# aborted, so it ends at once unless a user's transform or inline handler holds it).
_JOIN_SECONDS = 10.0


@dataclass(frozen=True)
class InformerOptions:
    """Tuning of one informer; every field has the client-go default unless said otherwise."""

    page_size: int | None = 500
    """LIST ``limit`` (objects per page); ``None`` lists in one request."""
    watch_timeout_range: tuple[int, int] = (300, 600)
    """Server-side watch timeout drawn uniformly from this range (seconds), so watches don't reconnect in step."""
    idle_timeout: float | None = None
    """Seconds without a byte after which a watch is taken as stalled (half-open) and restarted;
    default: that watch's server timeout + 30 s. Lower it where a stall must be seen sooner (bookmarks
    arrive about once a minute on a busy resource)."""
    streaming_list: bool = True
    """Load with a streaming list (``sendInitialEvents``, served from the watch cache) instead of
    LIST, falling back to LIST for good if the server does not support it (as client-go does by
    default since 1.35): it syncs faster and peaks lower than a one-page LIST (bench/README.md)."""
    resync_period: float | None = None
    """Default resync period (seconds) for handlers that don't give one; ``None``: no resync."""
    backoff_initial: float = 0.8
    backoff_cap: float = 30.0
    backoff_reset_after: float = 120.0
    progress_check_interval: float | None = 60.0
    """Seconds between progress checks (one LIST with ``limit=1``, off the hot path) that catch a
    watch waiting for a resourceVersion the server has not reached, or not delivering what the
    server has (``InformerStatistics.progress``); ``None`` turns them off."""
    store_compression: StoreCompression | None = None
    """Hold cached objects compressed: ``"zstd"`` (a dictionary trained on the first list; pods
    take 1.7 KB of RSS instead of 4.7, a read ~1.7x as long; needs the ``compressed`` extra, else the informer
    raises ``CompressionUnavailableError``); ``None``: plain JSON. See ``informers.compression``."""


@dataclass(frozen=True, slots=True)
class InformerStatistics:
    name: str
    synced: bool
    started: bool
    objects: int
    store: StoreStatistics
    watcher: WatcherStatistics
    reflector: ReflectorStatistics
    backoff: BackoffStatistics
    handlers: tuple[HandlerStatistics, ...]
    resyncs: int
    transform_errors: int
    """Objects whose transform raised; they were cached untransformed."""
    progress: ProgressStatistics
    """The progress check's verdict: ``progress.stalled_since`` is set while the informer makes no
    progress the server has made (see ``InformerOptions.progress_check_interval``)."""


class SharedInformer:
    """Watches one resource (optionally in one namespace, with selectors) for many consumers."""

    def __init__(
        self,
        client: ApiClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        transform: Transform | None = strip_managed_fields,
        options: InformerOptions | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        name: str | None = None,
    ) -> None:
        """``transform`` (default ``strip_managed_fields``) runs on every object before the cache
        and the handlers see it; it may edit the dict in place. ``indexers`` add named indexes to
        the default ``namespace`` and ``uid`` ones."""
        self.resource = resource
        self.namespace = namespace or None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.options = options or InformerOptions()
        self.name = name or _describe(resource, namespace, label_selector, field_selector)
        self._clock = clock
        self._transform = transform
        self._transform_errors = 0
        # The initial list's objects may skip the dict (see _listbody) unless a custom transform
        # needs one: True/False = managedFields cut out/kept, None = always decode.
        raw_initial: bool | None = True if transform is strip_managed_fields else False if transform is None else None
        self.store = Store(indexers, codec=store_codec(self.options.store_compression))
        self.backoff = Backoff(
            self.options.backoff_initial,
            self.options.backoff_cap,
            reset_after=self.options.backoff_reset_after,
            clock=clock,
            rng=rng,
        )
        self.watcher = Watcher(
            page_size=self.options.page_size,
            watch_timeout_range=self.options.watch_timeout_range,
            streaming_list=self.options.streaming_list,
            rng=rng,
            clock=clock,
        )
        self.reflector = Reflector(
            client,
            resource,
            self._apply,
            watcher=self.watcher,
            backoff=self.backoff,
            namespace=self.namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            idle_timeout=self.options.idle_timeout,
            clock=clock,
            name=self.name,
            raw_initial=raw_initial,
        )
        selectors = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        self.progress = ProgressCheck(
            client,
            resource.path(namespace=self.namespace),
            selectors,
            resume_point=lambda: self.watcher.resource_version,
            cached_version=self._cached_version,
            clock=clock,
        )
        self._lock = threading.RLock()  # store writes + notification fan-out + handler registration
        self._handlers: list[HandlerRegistration] = []
        self._replace: ReplaceBuffer | None = None
        self._synced = _bridge.Flag()
        self._started = False
        self._resyncs = 0
        # Set while run() is active: where buffered handlers' tasks are started.
        self._loop: _bridge.Loop | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._resync_wake: _bridge.Flag = _bridge.Flag()
        self._background: _bridge.BackgroundLoop | None = None

    # -- handlers -------------------------------------------------------------------------------
    def add_handler(
        self,
        on_add: NotificationHandler | None = None,
        on_update: NotificationHandler | None = None,
        on_delete: NotificationHandler | None = None,
        *,
        on_notification: NotificationHandler | None = None,
        resync_period: float | None = None,
        name: str | None = None,
        inline: bool = False,
    ) -> HandlerRegistration:
        """Register a handler, before or after start, from any thread; a late one first gets the
        cache replayed as ``ObjectAdded(in_initial_list=True)``. See ``HandlerRegistration``.

        ``inline=True`` calls a plain function on the thread that produced each notification (the
        reflector's), under the informer's lock: for cheap work that never blocks (filter and
        enqueue). Its replay runs on the calling thread, so add it off the event loop.
        """
        handler = HandlerRegistration(
            on_add=on_add,
            on_update=on_update,
            on_delete=on_delete,
            on_notification=on_notification,
            resync_period=resync_period if resync_period is not None else self.options.resync_period,
            name=name,
            inline=inline,
        )
        with self._lock:
            if self._synced.is_set():
                replay: list[Pending] = [DeferredAdded(v, True) for v in self.store.list_views()]
                handler.push_many(replay)
                handler.mark_synced()
            self._handlers.append(handler)
            if handler.resync_period is not None:
                handler.next_resync = self._clock.monotonic() + handler.resync_period
        self._launch(handler)
        self._resync_wake.set()
        return handler

    def remove_handler(self, handler: HandlerRegistration) -> None:
        """Stop delivering to ``handler``; what it had not handled yet is dropped. No notification
        starts after this returns (one being handled at that moment finishes); ``handler.stopped``
        turns true once its delivery task has ended."""
        with self._lock:
            if handler in self._handlers:
                self._handlers.remove(handler)
        handler.stop(discard_pending=True)

    def _launch(self, handler: HandlerRegistration) -> None:
        loop, group = self._loop, self._group
        if handler.inline or loop is None or group is None:
            return  # inline handlers need no task; others start when run() begins
        loop.run_sync(lambda: group.start_soon(handler.run, name=f"informer-handler-{handler.name}"))

    # -- the store side -------------------------------------------------------------------------
    def _prepare(self, obj: RawObject) -> RawObject:
        transform = self._transform
        if transform is None:
            return obj
        if transform is strip_managed_fields:
            return transform(obj)  # ours cannot fail on a dict: no snapshot needed
        pristine = orjson.dumps(obj)
        try:
            out = transform(obj)
            if not isinstance(out, dict):
                raise TypeError(f"the transform returned {type(out).__name__}, not a dict")
            return out
        except Exception as exc:  # noqa: BLE001 - a user's transform must not lose the object
            self._transform_errors += 1
            restored: RawObject = orjson.loads(pristine)
            _log.error(
                "transform failed; object cached untransformed",
                informer=self.name,
                key=_key_or_none(restored),
                error=f"{type(exc).__name__}: {exc}",
            )
            return restored

    def _apply(self, events: Sequence[WatchEvent | RawInitApply | InitApplyItem]) -> None:
        """Called by the reflector thread for each batch of watch events."""
        with self._lock:
            notes: list[Pending] = []
            first_sync = False
            for event in events:
                if isinstance(event, Apply):
                    obj = self._prepare(event.obj)
                    old = self.store.upsert_view(obj)
                    if old is None:
                        notes.append(ObjectAdded(obj))
                    elif old.uid != (uid(obj) or ""):  # a new object under an old name: two UIDs
                        notes.append(ObjectDeleted(DeletedFinalStateUnknown(old.key, old.decode())))
                        notes.append(ObjectAdded(obj))
                    else:  # an unchanged resourceVersion is a resync, as client-go counts it
                        same = old.resource_version == (resource_version(obj) or "")
                        notes.append(DeferredUpdated(old, obj, is_resync=same))
                elif isinstance(event, Delete):
                    obj = self._prepare(event.obj)
                    if self.store.delete_view(obj) is not None:  # a delete of an unknown object is news to no one
                        notes.append(ObjectDeleted(obj))  # the DELETED event carries the final state
                elif isinstance(event, InitApplyItem):
                    if self._replace is None:
                        self._replace = self.store.begin_replace()
                    self._replace.add_raw(event.item)
                elif isinstance(event, InitApply | RawInitApply):
                    if self._replace is None:
                        self._replace = self.store.begin_replace()
                    obj = event.obj if isinstance(event, InitApply) else event.decode()
                    self._replace.add(self._prepare(obj))
                elif isinstance(event, Init):
                    if self._replace is not None:
                        self._replace.abort()
                    self._replace = self.store.begin_replace()
                elif isinstance(event, InitDone):
                    buffer, self._replace = self._replace, None
                    if buffer is None:
                        buffer = self.store.begin_replace()
                    result = buffer.commit(event.resource_version)
                    first_sync = not self._synced.is_set()
                    if self._handlers:
                        notes.extend(_replace_notes(result, initial=first_sync))
                elif isinstance(event, Bookmark):
                    pass  # the watcher keeps the resourceVersion; the cache is unchanged
            if notes:
                for handler in self._handlers:
                    handler.push_many(notes)
            if first_sync:
                self._synced.set()
                for handler in self._handlers:
                    handler.mark_synced()
                _log.info("informer synced", informer=self.name, objects=len(self.store))

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until cancelled: the reflector thread, buffered handlers' tasks, the resync timer.

        On cancellation the watch stream is closed and the reflector thread joined (off the loop);
        undelivered notifications are dropped. An informer runs once.
        """
        with self._lock:
            if self._started:
                raise RuntimeError(f"informer {self.name} has already run")
            self._started = True
        thread = threading.Thread(target=self.reflector.run, name=f"informer-{self.name}", daemon=True)
        try:
            async with anyio.create_task_group() as group:
                with self._lock:
                    self._loop, self._group = _bridge.Loop.current(), group
                    handlers = [h for h in self._handlers if not h.inline]
                for handler in handlers:
                    group.start_soon(handler.run, name=f"informer-handler-{handler.name}")
                group.start_soon(self._resync_loop, name=f"informer-resync-{self.name}")
                if self.options.progress_check_interval is not None:
                    group.start_soon(self._progress_loop, self.options.progress_check_interval)
                thread.start()
                try:
                    await anyio.sleep_forever()
                finally:
                    with anyio.CancelScope(shield=True):
                        await _bridge.to_thread(self._stop_reflector, thread)
                        if thread.is_alive():
                            _log.warning(
                                "reflector thread still running after stop",
                                informer=self.name,
                                waited_seconds=_JOIN_SECONDS,
                            )
        finally:
            with self._lock:
                self._loop = self._group = None
                for handler in self._handlers:
                    handler.stop()

    def start(self) -> None:
        """The thread form of ``run()``: run this informer on a private event-loop thread until
        ``stop()`` (for code without an event loop; the same implementation as ``run``)."""
        background = _bridge.BackgroundLoop()
        background.__enter__()
        try:
            background.enter(_running(self))
        except BaseException:
            background.__exit__(None, None, None)
            raise
        self._background = background

    def stop(self) -> None:
        """End what ``start()`` began; returns once the informer has stopped."""
        background, self._background = self._background, None
        if background is not None:
            background.__exit__(None, None, None)

    def _stop_reflector(self, thread: threading.Thread) -> None:
        """Stop the reflector and join its thread, aborting again while it lives (a connection may
        open between two aborts), for at most ``_JOIN_SECONDS``."""
        deadline = time.monotonic() + _JOIN_SECONDS
        while True:
            self.reflector.stop()
            thread.join(0.1)
            if not thread.is_alive() or time.monotonic() > deadline:
                return

    @property
    def started(self) -> bool:
        return self._started

    def has_synced(self) -> bool:
        """True once the first full list is in the cache."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until ``has_synced``; returns False on timeout (see ``last_error`` for why)."""
        return await self._synced.wait(timeout)

    def wait_synced_blocking(self, timeout: float | None = None) -> bool:
        """The thread form of ``wait_synced`` (same flag); never call it on the event loop."""
        return self._synced.wait_blocking(timeout)

    @property
    def last_error(self) -> BaseException | None:
        """The last error of the list/watch loop (e.g. a 403 on LIST), or None."""
        return self.reflector.last_error

    # -- resync ---------------------------------------------------------------------------------
    async def _resync_loop(self) -> None:
        while True:
            self._resync_wake.clear()  # before looking: a handler added meanwhile re-arms us
            wait = await _bridge.to_thread(self._resync_due) if self._has_resync() else None
            await self._resync_wake.wait(wait)

    def _has_resync(self) -> bool:
        with self._lock:
            return any(h.next_resync is not None for h in self._handlers)

    def _resync_due(self) -> float | None:
        """Push a resync to every handler whose period is due; seconds until the next one is."""
        now = self._clock.monotonic()
        with self._lock:
            due = [h for h in self._handlers if h.next_resync is not None and h.next_resync <= now]
            if due and self._synced.is_set():
                notes: list[Pending] = [DeferredUpdated(v, v, True) for v in self.store.list_views()]
                for handler in due:
                    handler.push_many(notes)
                self._resyncs += 1
            for handler in due:
                assert handler.resync_period is not None
                handler.next_resync = now + handler.resync_period
            waits = [h.next_resync - now for h in self._handlers if h.next_resync is not None]
        return max(0.05, min(waits)) if waits else None

    # -- progress -------------------------------------------------------------------------------
    async def _progress_loop(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            if self._synced.is_set():  # before the first list there is nothing to compare
                # abandoned on stop: a check blocked on a dead connection must not hold run() up
                await _bridge.to_thread(self.progress.check, abandon_on_cancel=True)

    def _cached_version(self, key: str) -> str | None:
        obj = self.store.get(key)
        return resource_version(obj) if obj is not None else None

    # -- introspection --------------------------------------------------------------------------
    def statistics(self) -> InformerStatistics:
        with self._lock:
            handlers = tuple(h.statistics() for h in self._handlers)
        return InformerStatistics(
            name=self.name,
            synced=self._synced.is_set(),
            started=self._started,
            objects=len(self.store),
            store=self.store.statistics(),
            watcher=self.watcher.statistics(),
            reflector=self.reflector.statistics(),
            backoff=self.backoff.statistics(),
            handlers=handlers,
            resyncs=self._resyncs,
            transform_errors=self._transform_errors,
            progress=self.progress.statistics(),
        )

    def __repr__(self) -> str:
        return f"<SharedInformer {self.name} synced={self.has_synced()}>"


@contextlib.asynccontextmanager
async def _running(informer: SharedInformer) -> AsyncIterator[SharedInformer]:
    async with anyio.create_task_group() as group:
        group.start_soon(informer.run)
        yield informer
        group.cancel_scope.cancel()


def _replace_notes(result: ReplaceResult, *, initial: bool) -> list[Pending]:
    # Deletes first: an old UID's delete must precede the add of a new UID under the same name.
    # Deferred: each handler decodes on its own side as it goes, not the reflector under the lock.
    notes: list[Pending] = [ObjectDeleted(tombstone) for tombstone in result.deleted]
    notes += [DeferredAdded(s, initial) for s in result.added]
    notes += [DeferredUpdated(old, new, False) for old, new in result.updated]
    notes += [DeferredUpdated(s, s, True) for s in result.unchanged]  # client-go: a sync update
    return notes


def _key_or_none(obj: RawObject) -> str | None:
    try:
        return object_key(obj)
    except Exception:  # noqa: BLE001 - only for a log line
        return None


_SELECTOR_SHOWN = 48  # characters of a selector kept in names; the rest becomes a digest


def _short(selector: str) -> str:
    """A selector as names show it: whole when short, else a prefix and a digest of the whole, so
    names, log lines and error messages stay small whatever the selector's size."""
    if len(selector) <= _SELECTOR_SHOWN + 12:
        return selector
    digest = hashlib.sha256(selector.encode()).hexdigest()[:12]
    return f"{selector[:_SELECTOR_SHOWN]}...#{digest}"


def _describe(resource: Resource, namespace: str | None, labels: str | None, fields: str | None) -> str:
    parts = [str(resource)]
    if namespace:
        parts.append(f"ns={namespace}")
    if labels:
        parts.append(f"labels={_short(labels)}")
    if fields:
        parts.append(f"fields={_short(fields)}")
    return " ".join(parts)
