"""The reconcile key: which object a controller should look at, named by kind and UID.

A controller's workqueue holds ``Request`` values, so two triggers for the same object collapse into
one entry however they name it. Keying on the UID (not namespace/name) means an object deleted and
re-created under the same name is a different request, and a stale queued request for the old object
never reconciles the new one by accident. ``namespace`` and ``name`` ride along for logs only.
Invariant: equality and hashing use ``(kind, uid)`` only; ``namespace`` and ``name`` never affect
which queue entry a request maps to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Request"]


@dataclass(frozen=True, slots=True)
class Request:
    """A reconcile key. ``kind`` is e.g. ``"Pod"`` or ``"apps/v1/Deployment"``; ``uid`` is
    ``metadata.uid``. ``namespace`` and ``name`` are carried for logs and excluded from equality."""

    kind: str
    uid: str
    # compare=False also removes them from __hash__ (dataclasses hash the compared fields only).
    namespace: str = field(default="", compare=False)
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValueError("Request.kind must be a non-empty string")
        if not self.uid:
            raise ValueError(f"Request.uid must be a non-empty string (kind={self.kind!r})")

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where or '?'} (uid={self.uid})"
