"""The ``backup`` reconciler plugin: one Job per generation of a Backup, a record, a finalizer.

For a live Backup, each call converges on:

* the finalizer ``backup.informerd.dev/record`` (stored before anything else is written);
* one record ConfigMap ``backup-<uid>`` in the record namespace (``recordNamespace``), naming the
  Backup; owner references cannot cross namespaces, so the finalizer's cleanup deletes it;
* one ``batch/v1`` Job ``backup-<uid>-g<generation>`` per ``metadata.generation``, owned by the
  Backup (``owns: [batch/v1/jobs]`` brings its changes back here);
* status: ``Progressing`` while the Job runs; once the Job reports success (``succeeded >= 1`` or a
  ``Complete`` condition) ``Ready=True`` and ``observedGeneration``; a ``Failed`` Job gives
  ``Ready=False`` (bump the spec to run again); a spec without ``source`` is a ``TerminalError``
  (``Ready=False``, ``InvalidSpec``; never retried until the spec changes).

Invariant (idempotency by UID): every write is a create of a deterministically named object, and
``AlreadyExists`` counts as done, so reconciling twice, concurrently on two replicas during a leader
handover, or from a stale cache never makes a second Job for a generation or a second record.
A generation already observed is never run again, even if its Job has since been deleted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from controllers import Context, Result, TerminalError
from controllers.plugins import reconciler_plugin
from informers.errors import AlreadyExistsError

from .names import FINALIZER, LABEL_GENERATION, LABEL_UID, job_name, record_name

__all__ = ["PERMISSIONS", "BackupOptions", "backup", "job_finished"]

PERMISSIONS: dict[str, list[str]] = {
    "batch/v1/jobs": ["create"],
    "v1/configmaps": ["create", "delete", "get"],
    "backup.informerd.dev/v1/backups": ["patch", "update"],
    "backup.informerd.dev/v1/backups/status": ["patch"],
    "events.k8s.io/v1/events": ["create", "patch"],  # the recorder writes events.k8s.io/v1 Events
}
"""What the reconciler writes (reads of Backups and Jobs come from the informers)."""


class BackupOptions(BaseModel):
    """The plugin's ``options`` in the daemon config (camelCase keys)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)

    record_namespace: str = Field(
        "backup-records", min_length=1, description="Namespace of the record ConfigMaps (must exist)."
    )
    image: str = Field("busybox:1.36", min_length=1, description="Image of the backup Jobs.")


def job_finished(job: dict[str, Any]) -> bool | None:
    """True if ``job`` succeeded, False if it failed, None while it runs (``batch/v1`` JobStatus)."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if int(status.get("succeeded") or 0) >= 1 or conditions.get("Complete") == "True":
        return True
    if conditions.get("Failed") == "True":
        return False
    return None


def _job(obj: dict[str, Any], name: str, image: str) -> dict[str, Any]:
    meta, source = obj["metadata"], obj["spec"]["source"]
    generation = int(meta["generation"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": {LABEL_UID: meta["uid"], LABEL_GENERATION: str(generation)},
        },
        "spec": {
            "backoffLimit": 2,
            "template": {
                "metadata": {"labels": {LABEL_UID: meta["uid"]}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "backup",
                            "image": image,
                            "command": ["sh", "-c", 'echo "backing up $SOURCE_KIND/$SOURCE_NAME"'],
                            "env": [
                                {"name": "SOURCE_KIND", "value": str(source["kind"])},
                                {"name": "SOURCE_NAME", "value": str(source["name"])},
                            ],
                        }
                    ],
                },
            },
        },
    }


def _record(obj: dict[str, Any], name: str, namespace: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_UID: meta["uid"]}},
        "data": {
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "source": f"{obj['spec']['source']['kind']}/{obj['spec']['source']['name']}",
        },
    }


@reconciler_plugin(options=BackupOptions, permissions=PERMISSIONS)
def backup(options: BackupOptions | None) -> Callable[[Context], Awaitable[Result | None]]:
    """The plugin factory: ``options`` validated by the daemon, the reconcile function returned."""
    opts = options or BackupOptions()

    async def ensure_record(ctx: Context) -> None:
        assert ctx.obj is not None
        status = ctx.obj.setdefault("status", {})
        name = record_name(ctx.uid)
        if status.get("recordName") == name:
            return  # written by an earlier call (the status is only set after the create)
        with contextlib.suppress(AlreadyExistsError):  # another call (or replica) made the same record
            await ctx.api("v1/configmaps").create(_record(ctx.obj, name, opts.record_namespace))
        status["recordName"] = name

    async def apply(ctx: Context) -> Result | None:
        assert ctx.obj is not None
        source = (ctx.obj.get("spec") or {}).get("source")
        if not isinstance(source, dict) or not source.get("kind") or not source.get("name"):
            # The CRD's schema requires it; a retry cannot help until the spec changes.
            ctx.set_condition("Ready", False, "InvalidSpec", "spec.source needs a kind and a name")
            raise TerminalError("spec.source needs a kind and a name")
        await ensure_record(ctx)
        status = ctx.obj["status"]
        generation = int(ctx.obj["metadata"]["generation"])
        name = job_name(ctx.uid, generation)
        status["jobName"] = name
        if status.get("observedGeneration") == generation:
            return None  # this generation's run has finished; nothing more to do
        job = next((j for j in ctx.children("batch/v1/jobs") if j["metadata"]["name"] == name), None)
        if job is None:
            try:
                await ctx.api("batch/v1/jobs").create(ctx.own(_job(ctx.obj, name, opts.image)))
                ctx.event("JobCreated", f"created Job {name} for generation {generation}")
            except AlreadyExistsError:
                pass  # created by an earlier call whose news has not reached the cache yet
            ctx.set_condition("Progressing", True, "JobRunning", f"Job {name} is running")
            ctx.set_condition("Ready", False, "BackupRunning", f"generation {generation} is being backed up")
            return None  # the Job's own events (owns) bring us back
        finished = job_finished(job)
        if finished is None:
            ctx.set_condition("Progressing", True, "JobRunning", f"Job {name} is running")
            ctx.set_condition("Ready", False, "BackupRunning", f"generation {generation} is being backed up")
            return None
        status["observedGeneration"] = generation
        ctx.set_condition("Progressing", False, "JobFinished", f"Job {name} finished")
        if finished:
            if ctx.set_condition("Ready", True, "BackupComplete", f"generation {generation} backed up by Job {name}"):
                ctx.event("BackupComplete", f"Job {name} succeeded")
        elif ctx.set_condition("Ready", False, "BackupFailed", f"Job {name} failed; change the spec to retry"):
            ctx.warning("BackupFailed", f"Job {name} failed")
        return None

    async def cleanup(ctx: Context) -> Result | None:
        # The record lives in another namespace: no owner reference can delete it, so we do.
        await ctx.api("v1/configmaps").delete(record_name(ctx.uid), namespace=opts.record_namespace)
        return None  # the Jobs are owned: the garbage collector deletes them with the Backup

    async def reconcile(ctx: Context) -> Result | None:
        if ctx.obj is None:
            return None  # gone: the finalizer already cleaned up
        return await ctx.finalize(FINALIZER, apply=apply, cleanup=cleanup)

    return reconcile
