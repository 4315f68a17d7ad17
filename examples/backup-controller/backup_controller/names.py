"""Deterministic names and the resources the backup controller works with.

Every object the reconciler creates is named from the Backup's UID (and, for a Job, the generation
it backs up), never generated: a second reconcile, or a second replica during a leader handover,
computes the same name, and the apiserver's ``AlreadyExists`` is what makes the write happen once.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import yaml

from informers.resources import Resource

__all__ = [
    "BACKUPS",
    "FINALIZER",
    "GROUP",
    "JOBS",
    "LABEL_GENERATION",
    "LABEL_UID",
    "crd",
    "job_name",
    "record_name",
]

GROUP = "backup.informerd.dev"
BACKUPS = Resource(GROUP, "v1", "backups", "Backup", namespaced=True)
JOBS = Resource("batch", "v1", "jobs", "Job", namespaced=True)
FINALIZER = f"{GROUP}/record"
"""Held while the Backup has a record to delete (the record lives in another namespace, where an
owner reference cannot reach)."""
LABEL_UID = f"{GROUP}/uid"
LABEL_GENERATION = f"{GROUP}/generation"


def job_name(uid: str, generation: int) -> str:
    """The one Job of ``generation`` of the Backup ``uid`` (a full UID keeps names unique across
    re-created Backups; 7 + 36 + 2 + digits stays under the 63 characters of a label value)."""
    return f"backup-{uid}-g{generation}"


def record_name(uid: str) -> str:
    """The one record ConfigMap of the Backup ``uid``."""
    return f"backup-{uid}"


def crd() -> dict[str, Any]:
    """The Backup CustomResourceDefinition (``crd.yaml``, shipped as package data)."""
    loaded: dict[str, Any] = yaml.safe_load(files(__package__).joinpath("crd.yaml").read_text())
    return loaded
