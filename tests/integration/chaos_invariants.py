"""What the chaos suite asserts of every informer at quiescence, over what its handler was told.

* the cache equals the server's list (names, UIDs, resourceVersions);
* per UID, the resourceVersions of adds and (non-resync) updates strictly increase, a delete is
  never older than what preceded it, and nothing follows a UID's delete;
* every UID that was notified and is no longer on the server got a delete notification;
* replaying the notifications in order rebuilds the cache exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

from informers.events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from informers.informer import SharedInformer
from informers.objects import object_key
from informers.testing import ControlPlane

from .support import EventLog

State = dict[str, tuple[str, str]]  # key -> (uid, resourceVersion)


def _state(objects: Iterable[dict[str, object]]) -> State:
    out: State = {}
    for obj in objects:
        meta = obj["metadata"]
        assert isinstance(meta, dict)
        out[object_key(obj)] = (str(meta["uid"]), str(meta["resourceVersion"]))
    return out


def server_state(plane: ControlPlane, path: str, selector: str | None = None) -> State:
    query = f"?labelSelector={selector}" if selector else ""
    return _state(plane.request_json("GET", path + query)["items"])


def cache_state(informer: SharedInformer) -> State:
    return _state(informer.store.list())


def replay(notes: Iterable[Notification]) -> State:
    state: State = {}
    for note in notes:
        if isinstance(note, ObjectAdded):
            state.update(_state([note.obj]))
        elif isinstance(note, ObjectUpdated):
            state.update(_state([note.new]))
        elif isinstance(note, ObjectDeleted):
            last = note.last_state
            if state.get(note.key, ("",))[0] == last["metadata"]["uid"]:
                del state[note.key]
    return state


def _rv(obj: dict[str, object]) -> int:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return int(str(meta["resourceVersion"]))


def _uid(obj: dict[str, object]) -> str:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return str(meta["uid"])


def _subject(note: Notification) -> dict[str, object]:
    if isinstance(note, ObjectAdded):
        return note.obj
    if isinstance(note, ObjectUpdated):
        return note.new
    return note.last_state


def ordering_violations(notes: Iterable[Notification]) -> tuple[list[str], set[str]]:
    """(violations of per-UID ordering, UIDs whose last notification is a delete).

    An add needs the UID absent, an update or a delete needs it present (a UID may come back
    after a delete only through a selector it left and re-entered, and then newer)."""
    last: dict[str, int] = {}
    present: set[str] = set()
    gone: set[str] = set()
    problems: list[str] = []
    for note in notes:
        if isinstance(note, ObjectUpdated) and note.is_resync:
            continue
        obj = _subject(note)
        uid, rv, kind = _uid(obj), _rv(obj), type(note).__name__
        if isinstance(note, ObjectAdded) == (uid in present):
            problems.append(f"{kind} of {uid} at {rv} while {'present' if uid in present else 'absent'}")
        if isinstance(note, ObjectDeleted):
            if uid in last and rv < last[uid]:
                problems.append(f"delete of {uid} at {rv} older than {last[uid]}")
            present.discard(uid)
            gone.add(uid)
        else:
            if uid in last and rv <= last[uid]:
                problems.append(f"{kind} of {uid} at {rv} not after {last[uid]}")
            present.add(uid)
            gone.discard(uid)
        last[uid] = max(rv, last.get(uid, rv))
    return problems, gone


def check_informer(informer: SharedInformer, recorder: EventLog, server: State) -> list[str]:
    """Every failed invariant of one informer, as text (empty: all hold)."""
    failures: list[str] = []
    cache = cache_state(informer)
    if cache != server:
        missing = sorted(set(server) - set(cache))[:5]
        extra = sorted(set(cache) - set(server))[:5]
        stale = sorted(k for k in set(server) & set(cache) if server[k] != cache[k])[:5]
        failures.append(f"cache != server: missing={missing} extra={extra} stale={stale}")
    notes = recorder.snapshot()
    if replay(notes) != cache:
        failures.append("replaying the notifications does not rebuild the cache")
    problems, deleted = ordering_violations(notes)
    failures += problems[:10]
    notified: set[str] = set()
    for note in notes:
        notified.add(_uid(_subject(note)))
    live = {uid for uid, _ in server.values()}
    lost = sorted(notified - live - deleted)
    if lost:
        failures.append(f"{len(lost)} UID(s) gone from the server without a delete notification: {lost[:5]}")
    return [f"{informer.name}: {f}" for f in failures]
