"""What the hostile-input tests check after every scenario: typed errors only, messages bounded
and free of object contents, no partial object ever notified, and cache == server by name, UID,
resourceVersion and content."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import informers.errors
from informers import _watcher
from informers.events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from informers.informer import SharedInformer
from informers.objects import object_key
from informers.testing import ControlPlane

from .support import wait_states_equal

MESSAGE_LIMIT = 4096
"""No log line or error text may exceed this: a hostile line of megabytes must not come back."""

TYPED = set(informers.errors.__all__) | {"StreamingListUnsupportedError", "WatcherStateError"}
_ERROR_FIELD = re.compile(r"""error=['"](\w+):""")

Content = Callable[[Mapping[str, Any]], Any]
State = dict[str, tuple[str, str, Any]]  # key -> (uid, resourceVersion, content)


def state(objects: Iterable[Mapping[str, Any]], content: Content) -> State:
    return {
        object_key(o): (str(o["metadata"]["uid"]), str(o["metadata"]["resourceVersion"]), content(o)) for o in objects
    }


def wait_cache_is_server(
    informer: SharedInformer, plane: ControlPlane, path: str, content: Content, timeout: float = 30
) -> State:
    """Wait until the cache equals the server (names, UIDs, resourceVersions, contents); return it."""
    server = wait_states_equal(
        lambda: state(plane.request_json("GET", path)["items"], content),
        lambda: state(informer.store.list(), content),
        timeout,
    )
    return dict(server)


class WholeObjects:
    """A handler that records every notified object failing ``whole`` (a partial object)."""

    def __init__(self, whole: Callable[[Mapping[str, Any]], bool]) -> None:
        self._whole = whole
        self._lock = threading.Lock()
        self.notes = 0
        self.partial: list[str] = []

    def __call__(self, note: Notification) -> None:
        objs: list[Any] = []
        if isinstance(note, ObjectAdded):
            objs = [note.obj]
        elif isinstance(note, ObjectUpdated):
            objs = [note.old, note.new]
        elif isinstance(note, ObjectDeleted):
            objs = [note.last_state]
        with self._lock:
            self.notes += 1
            for obj in objs:
                meta = obj.get("metadata") if isinstance(obj, Mapping) else None
                if not (isinstance(meta, Mapping) and meta.get("uid") and meta.get("resourceVersion")):
                    self.partial.append(f"{type(note).__name__} without uid/resourceVersion")
                elif not self._whole(obj):
                    self.partial.append(f"{type(note).__name__} {meta.get('name')}: content differs")


def error_types(records: Iterable[logging.LogRecord]) -> list[str]:
    """Class names of the errors the informer logged as request failures, in order."""
    out = []
    for record in records:
        message = record.getMessage()
        if message.startswith("informer request failed"):
            match = _ERROR_FIELD.search(message)
            out.append(match.group(1) if match else "?")
    return out


def assert_errors_safe(
    records: Iterable[logging.LogRecord], texts: Iterable[str | None], secret: str, limit: int = MESSAGE_LIMIT
) -> list[str]:
    """Every log line and error text is bounded and never quotes ``secret`` (object content);
    every logged request failure is one of informerd's typed errors. Returns those types."""
    records = list(records)
    for text in [r.getMessage() for r in records] + [t for t in texts if t]:
        assert secret not in text, f"object content quoted: {text[:300]}..."
        assert len(text) <= limit, f"a {len(text)}-character message: {text[:300]}..."
    types = error_types(records)
    untyped = [t for t in types if t not in TYPED]
    assert not untyped, f"untyped errors escaped: {untyped}"
    assert all(hasattr(informers.errors, t) or hasattr(_watcher, t) for t in types)
    return types
