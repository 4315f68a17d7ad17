"""The ``event-log`` handler plugin: one structured log line per notification it receives.

It logs what happened and to which object (``type``, ``kind``, ``namespace``, ``name``, ``uid``,
``resourceVersion``), never the object's contents: specs and data may hold what must not reach logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from controllers.plugins import handler_plugin
from informers.events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated

__all__ = ["describe", "event_log"]


def describe(note: Notification) -> dict[str, Any]:
    """The fields logged for ``note`` (identity only)."""
    if isinstance(note, ObjectAdded):
        kind, obj = ("initial" if note.in_initial_list else "added"), note.obj
    elif isinstance(note, ObjectUpdated):
        kind, obj = ("resync" if note.is_resync else "updated"), note.new
    elif isinstance(note, ObjectDeleted):
        kind, obj = ("deleted?" if note.final_state_unknown else "deleted"), note.last_state
    else:
        return {"type": type(note).__name__}
    meta = obj.get("metadata") or {}
    return {
        "type": kind,
        "kind": obj.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "resource_version": meta.get("resourceVersion"),
    }


@handler_plugin()
def event_log(options: None) -> Callable[[Notification], None]:
    """The plugin factory (no options)."""
    log = structlog.get_logger("backup_controller.events")

    def handle(note: Notification) -> None:
        log.info("notification", **describe(note))

    return handle
