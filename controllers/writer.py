"""API writes for reconcilers: get, create, update, patch, apply, delete and the status subresource.

``ApiWriter`` is the one module of ``controllers`` that changes objects on the apiserver. It works
on plain dicts (orjson on the wire, no generated models) and a ``Resource`` from discovery, over a
shared ``ApiClient`` (which throttles with QPS/Burst). On top it adds the policy reconcilers need:
``ConflictError`` is raised typed (the controller requeues and re-reads from its cache); a delete
of a missing object returns ``None``; retryable failures (429, 5xx, timeouts, dropped connections)
are retried from one ``RetryBudget`` per call (``informers._retry``), so a call sends at most
``1 + retries`` requests whatever the cause: the client repeats nothing inside a writer call, and
each wait is the server's ``Retry-After`` when given, else jittered exponential backoff. Nothing
is repeated where a repeat could do something twice (a ``generateName`` create or a JSON patch
without a ``test`` op after an answer-less or 5xx failure; a 429 was refused before any work).
Every attempt passes the per-group ``CircuitBreaker`` (group = ``apiVersion``), so a sick API
group sheds calls at once; and at most ``max_in_flight`` requests run at a time, so a burst of
reconciles queues here instead of opening unbounded connections. The API is synchronous
(reconcilers run in worker threads); ``controllers.api.Api`` hands the same calls to a worker thread
for coroutine reconcilers.
Invariant: no request is sent without holding an in-flight slot, a circuit permit and a grant
from the call's budget, and a slot is never held while sleeping between retries.
"""

from __future__ import annotations

import enum
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from informers import objects
from informers._backoff import Backoff
from informers._log import get_logger
from informers._retry import RetryBudget
from informers.client import ApiClient
from informers.clock import SYSTEM_CLOCK, Clock
from informers.config import ClientConfig
from informers.errors import (
    AlreadyExistsError,
    ApiError,
    ClientClosedError,
    ConflictError,
    InformerdError,
    MalformedResponseError,
    NotFoundError,
    TooManyRequestsError,
)
from informers.objects import RawObject
from informers.resources import Resource

from .circuit import CircuitBreaker, CircuitOptions, CircuitShedError, CircuitState, CircuitStatistics

__all__ = [
    "APPLY_PATCH_CONTENT_TYPE",
    "ApiWriter",
    "PatchType",
    "WriterOptions",
    "WriterStatistics",
    "client_config_for_workers",
]

_log = get_logger(__name__)

APPLY_PATCH_CONTENT_TYPE = "application/apply-patch+yaml"
"""Server-side apply; the body is JSON (YAML's subset), as kubectl and client-go send it."""

_R = TypeVar("_R")


class PatchType(enum.Enum):
    """Patch formats for ``ApiWriter.patch`` (server-side apply has its own method, ``apply``)."""

    JSON = "application/json-patch+json"
    """RFC 6902 operations (a list); add a ``test`` op to make it conditional and safe to retry."""
    MERGE = "application/merge-patch+json"
    """RFC 7386: maps merge, lists are replaced whole, ``null`` deletes a key."""
    STRATEGIC = "application/strategic-merge-patch+json"
    """Built-in kinds only (lists merge by key); custom resources answer 415."""


@dataclass(frozen=True, slots=True)
class WriterOptions:
    """How ``ApiWriter`` retries, limits and identifies its writes."""

    field_manager: str | None = None
    """``fieldManager`` sent with every write (shows in ``managedFields``). Default None: the
    server derives one from the user agent. ``apply`` requires one, here or per call."""

    retries: int = 3
    """Repeats one call may make after retryable failures (429, 5xx, timeouts, dropped
    connections), whatever the cause: a call sends at most ``1 + retries`` requests. The client's
    ``max_retries`` / ``connection_retries`` do not add to it (the client does not retry inside a
    writer call). Default 3; 0 disables."""

    backoff_initial: float = 0.2
    """Seconds before the first retry when the server sent no ``Retry-After`` (its value is the
    delay when it did); doubles per retry. Default 0.2 s."""

    backoff_cap: float = 5.0
    """Largest base delay between retries. Default 5 s."""

    backoff_jitter: float = 1.0
    """Random extra fraction of each delay, so workers retrying together spread out. Default 1.0
    (a delay in ``[base, 2 * base)``)."""

    max_in_flight: int | None = None
    """Requests sent at once through this writer; more callers wait their turn. Default None:
    the client's ``pool_maxsize``, so writes never need more connections than the pool keeps."""

    timeout: float | None = None
    """Read timeout of each request in seconds. Default None: the client's ``read_timeout``."""

    circuit: CircuitOptions = field(default_factory=CircuitOptions)
    """Thresholds of the per-API-group circuit breaker (ignored when a breaker is passed in)."""

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must not be negative, got {self.retries!r}")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {self.max_in_flight!r}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if not 0 < self.backoff_initial <= self.backoff_cap:
            raise ValueError("backoff_initial must be positive and at most backoff_cap")


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    calls: Mapping[str, int]
    """Calls by verb (``get``, ``create``, ``update``, ``patch``, ``apply``, ``delete``...)."""
    errors: Mapping[str, int]
    """Calls that raised, by exception class name (after retries)."""
    attempts: int
    """Requests sent (first attempts and retries)."""
    retries: int
    conflicts: int
    """Optimistic-concurrency ``ConflictError``s raised (a stale resourceVersion or precondition)."""
    already_exists: int
    """``AlreadyExistsError``s raised by creates (expected in get-or-create reconcilers)."""
    deletes_already_gone: int
    """Deletes that found nothing (404) and returned None."""
    shed: int
    """Calls refused by an open circuit, never sent."""
    in_flight: int
    waiting: int
    """Callers waiting for an in-flight slot right now."""
    peak_in_flight: int
    max_in_flight: int
    circuit: CircuitStatistics


def client_config_for_workers(config: ClientConfig, workers: int, *, watches: int = 0, spare: int = 2) -> ClientConfig:
    """``config`` with a connection pool big enough for ``workers`` reconcile threads.

    Each worker sends at most one request at a time, each open watch holds one connection, and
    ``spare`` covers the event recorder and discovery; the pool is never made smaller. A request
    beyond the pool still works (the pool does not block) but its connection is closed after use,
    so every such request pays a new TCP+TLS handshake. QPS/Burst are left alone: with many workers
    the client's token bucket (5/s by default) is usually the real limit; raise it deliberately.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}")
    needed = workers + max(0, watches) + max(0, spare)
    return replace(config, pool_maxsize=max(config.pool_maxsize, needed))


@dataclass(frozen=True, slots=True)
class _Op:
    verb: str
    resource: Resource
    method: str
    path: str
    query: Mapping[str, Any] | None = None
    body: Any = None
    content_type: str = "application/json"
    repeatable: bool = True  # False: a repeat after an unknown outcome could act twice
    missing_ok: bool = False  # a 404 returns None


class ApiWriter:
    """Thread-safe; share one per process (or per controller). ``close()`` does not close the client.

    ``breaker`` may be shared between writers; by default each writer has its own. ``sleep`` and
    ``rng`` exist for tests (the default sleep is interrupted by ``close()``).
    """

    def __init__(
        self,
        client: ApiClient,
        options: WriterOptions | None = None,
        *,
        breaker: CircuitBreaker | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.options = options or WriterOptions()
        self.breaker = breaker or CircuitBreaker(self.options.circuit, clock=clock)
        self._clock = clock
        self._sleep_fn = sleep
        self._rng = rng or random.Random()
        self.max_in_flight = self.options.max_in_flight or client.config.pool_maxsize
        self._closed = threading.Event()
        self._cond = threading.Condition()
        self._in_flight = self._waiting = self._peak = 0
        self._calls: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._attempts = self._retries = self._conflicts = self._already_exists = self._gone = self._shed = 0

    # -- reads ----------------------------------------------------------------------------------

    def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> RawObject:
        """The object as stored now (a live read; reconcilers normally read their cache)."""
        return self._object(_Op("get", resource, "GET", resource.path(namespace, name)))

    # -- writes ---------------------------------------------------------------------------------

    def create(
        self,
        resource: Resource,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> RawObject:
        """POST ``obj``; raises ``AlreadyExistsError`` (a ``ConflictError``) if the name is taken.

        A named create is retried after a lost answer; if the lost attempt had succeeded, the retry
        reports ``AlreadyExistsError`` (the next reconcile finds the object in the cache). A
        ``generateName`` create is not retried then, so it never makes two objects.
        """
        ns = _namespace_for(resource, obj, namespace)
        # A generateName create repeated after an unknown outcome could create a second object.
        repeatable = objects.name(obj) is not None
        return self._object(
            _Op(
                "create",
                resource,
                "POST",
                resource.path(ns),
                self._query(field_manager, dry_run),
                obj,
                repeatable=repeatable,
            )
        )

    def update(
        self,
        resource: Resource,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> RawObject:
        """PUT ``obj`` whole; its ``metadata.resourceVersion`` makes it conditional (409 if stale).

        If an answer is lost and the retry finds the write already applied, it reports
        ``ConflictError``: the controller re-reads and sees its own change.
        """
        return self._put("update", resource, obj, namespace, None, field_manager, dry_run)

    def update_status(
        self,
        resource: Resource,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> RawObject:
        """PUT to the status subresource: the server keeps everything but ``status`` (and metadata)."""
        return self._put("update_status", resource, obj, namespace, "status", field_manager, dry_run)

    def patch(
        self,
        resource: Resource,
        name: str,
        patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        namespace: str | None = None,
        patch_type: PatchType = PatchType.MERGE,
        subresource: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> RawObject:
        """PATCH one object. A ``metadata.resourceVersion`` in a merge patch, or a JSON patch
        ``test`` op, makes it conditional."""
        verb = "patch_status" if subresource == "status" else "patch"
        return self._object(
            _patch_op(
                verb, resource, name, patch, namespace, patch_type, subresource, self._query(field_manager, dry_run)
            )
        )

    def patch_status(
        self,
        resource: Resource,
        name: str,
        patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        namespace: str | None = None,
        patch_type: PatchType = PatchType.MERGE,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> RawObject:
        """PATCH the status subresource (changes to anything but ``status`` are ignored there)."""
        return self.patch(
            resource,
            name,
            patch,
            namespace=namespace,
            patch_type=patch_type,
            subresource="status",
            field_manager=field_manager,
            dry_run=dry_run,
        )

    def apply(
        self,
        resource: Resource,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> RawObject:
        """Server-side apply: ``obj`` states the fields this manager owns; creates if missing.

        ``apiVersion``/``kind`` are filled from ``resource`` when absent. ``force`` takes over
        fields owned by other managers instead of raising ``ConflictError``. Applying the same
        intent twice changes nothing (the resourceVersion stays).
        """
        manager = field_manager or self.options.field_manager
        if not manager:
            raise ValueError("server-side apply needs a field manager (WriterOptions.field_manager or field_manager=)")
        name = objects.name(obj)
        if name is None:
            raise ValueError("server-side apply needs metadata.name")
        body = dict(obj)
        body.setdefault("apiVersion", resource.api_version)
        if resource.kind:
            body.setdefault("kind", resource.kind)
        if "kind" not in body:
            raise ValueError(f"server-side apply needs a kind; {resource} was built without one")
        ns = _namespace_for(resource, obj, namespace)
        query: dict[str, Any] = {
            "fieldManager": manager,
            "force": True if force else None,
            "dryRun": "All" if dry_run else None,
        }
        verb = "apply_status" if subresource == "status" else "apply"
        return self._object(
            _Op(verb, resource, "PATCH", resource.path(ns, name, subresource), query, body, APPLY_PATCH_CONTENT_TYPE)
        )

    def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> RawObject | None:
        """DELETE one object; returns the server's answer, or None if it was already gone.

        ``uid`` / ``resource_version`` are preconditions (``ConflictError`` if they no longer hold).
        ``propagation_policy`` is ``Foreground``, ``Background`` or ``Orphan``. An object with
        finalizers comes back with a ``deletionTimestamp`` and stays until they are removed.
        """
        if propagation_policy not in (None, "Foreground", "Background", "Orphan"):
            raise ValueError(f"propagation_policy must be Foreground, Background or Orphan, got {propagation_policy!r}")
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            options["preconditions"] = preconditions
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if dry_run:
            options["dryRun"] = ["All"]
        result = self._run(
            _Op("delete", resource, "DELETE", resource.path(namespace, name), None, options, missing_ok=True)
        )
        return result

    # -- lifecycle and statistics ---------------------------------------------------------------

    def close(self) -> None:
        """Refuse new calls, wake callers waiting for a slot or a retry; the client stays open."""
        self._closed.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def statistics(self) -> WriterStatistics:
        circuit = self.breaker.statistics()
        with self._cond:
            return WriterStatistics(
                calls=dict(self._calls),
                errors=dict(self._errors),
                attempts=self._attempts,
                retries=self._retries,
                conflicts=self._conflicts,
                already_exists=self._already_exists,
                deletes_already_gone=self._gone,
                shed=self._shed,
                in_flight=self._in_flight,
                waiting=self._waiting,
                peak_in_flight=self._peak,
                max_in_flight=self.max_in_flight,
                circuit=circuit,
            )

    # -- internals ------------------------------------------------------------------------------

    def _query(self, field_manager: str | None, dry_run: bool) -> dict[str, Any]:
        return {"fieldManager": field_manager or self.options.field_manager, "dryRun": "All" if dry_run else None}

    def _put(
        self,
        verb: str,
        resource: Resource,
        obj: Mapping[str, Any],
        namespace: str | None,
        subresource: str | None,
        field_manager: str | None,
        dry_run: bool,
    ) -> RawObject:
        name = objects.name(obj)
        if name is None:
            raise ValueError(f"{verb} needs metadata.name")
        if objects.resource_version(obj) is None:
            raise ValueError(
                f"{verb} needs metadata.resourceVersion (optimistic concurrency); "
                "read the object first, or use patch/apply for a blind write"
            )
        ns = _namespace_for(resource, obj, namespace)
        return self._object(
            _Op(verb, resource, "PUT", resource.path(ns, name, subresource), self._query(field_manager, dry_run), obj)
        )

    def _object(self, op: _Op) -> RawObject:
        result = self._run(op)
        if result is None:
            raise MalformedResponseError(f"{op.verb} {op.path}: the server answered with an empty body")
        return result

    def _run(self, op: _Op) -> RawObject | None:
        with self._cond:
            self._calls[op.verb] += 1
        try:
            return self._attempts_of(op)
        except BaseException as exc:
            with self._cond:
                self._errors[type(exc).__name__] += 1
                if isinstance(exc, AlreadyExistsError):
                    self._already_exists += 1
                elif isinstance(exc, ConflictError):
                    self._conflicts += 1
                elif isinstance(exc, CircuitShedError):
                    self._shed += 1
            raise

    def _attempts_of(self, op: _Op) -> RawObject | None:
        group = op.resource.api_version
        # One budget for the whole call. The client sends once per request and leaves every
        # repeat to this loop, so each one takes a slot and a circuit permit again.
        budget = RetryBudget(self.options.retries, retry_in_client=False)
        backoff: Backoff | None = None
        while True:
            self._acquire_slot(op)
            try:
                permit = self.breaker.acquire(group)  # CircuitShedError leaves at once: no retry
                with permit:
                    with self._cond:
                        self._attempts += 1
                    try:
                        response = self.client.request(
                            op.method,
                            op.path,
                            query=op.query,
                            body=op.body,
                            content_type=op.content_type,
                            timeout=self.options.timeout,
                            budget=budget,
                        )
                    except ClientClosedError:
                        permit.release()  # nothing was sent: no verdict on the server's health
                        raise
                decoded = response.json() if response.body else None
                if decoded is not None and not isinstance(decoded, dict):
                    raise MalformedResponseError(f"{op.verb} {op.path}: the answer is not a JSON object")
                return decoded
            except NotFoundError:
                if not op.missing_ok:
                    raise
                with self._cond:
                    self._gone += 1
                return None
            except InformerdError as exc:
                if not self._should_retry(op, exc, budget):
                    raise
                error: InformerdError = exc
            finally:
                self._release_slot()
            # The server's Retry-After when it gave one (it knows when it can take the request),
            # else our jittered exponential backoff.
            delay = error.retry_after if isinstance(error, ApiError) else None
            if delay is None:
                if backoff is None:
                    backoff = Backoff(
                        self.options.backoff_initial,
                        self.options.backoff_cap,
                        jitter=self.options.backoff_jitter,
                        clock=self._clock,
                        rng=self._rng,
                    )
                delay = backoff.next_delay()
            with self._cond:
                self._retries += 1
            _log.info(
                "retrying an API call",
                verb=op.verb,
                path=op.path,
                attempt=budget.spent,
                delay_seconds=round(delay, 3),
                error=str(error),
            )
            self._sleep(delay, op, error)

    def _should_retry(self, op: _Op, exc: InformerdError, budget: RetryBudget) -> bool:
        if not exc.retryable or isinstance(exc, CircuitShedError):
            return False
        if self.breaker.state(op.resource.api_version) is CircuitState.OPEN:
            return False  # this failure opened the circuit: a retry would only be shed
        # A 429 was refused before any work; other failures may have been applied already.
        if not (op.repeatable or isinstance(exc, TooManyRequestsError)):
            return False
        return budget.spend()  # last: only a repeat that will happen uses the budget

    def _acquire_slot(self, op: _Op) -> None:
        with self._cond:
            self._waiting += 1
            try:
                while self._in_flight >= self.max_in_flight and not self._closed.is_set():
                    self._cond.wait()
            finally:
                self._waiting -= 1
            if self._closed.is_set():
                raise ClientClosedError(f"{op.verb} {op.path}: the ApiWriter is closed")
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def _release_slot(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()

    def _sleep(self, seconds: float, op: _Op, error: InformerdError) -> None:
        if self._sleep_fn is not None:
            self._sleep_fn(seconds)
        else:
            self._closed.wait(seconds)
        if self._closed.is_set():
            raise ClientClosedError(f"{op.verb} {op.path}: the ApiWriter was closed while retrying") from error


def _namespace_for(resource: Resource, obj: Mapping[str, Any], namespace: str | None) -> str | None:
    """The namespace to write ``obj`` into: the argument or ``metadata.namespace`` (they must agree)."""
    own = objects.namespace(obj)
    if not resource.namespaced:
        if namespace or own:
            raise ValueError(f"{resource} is cluster-scoped; got namespace {namespace or own!r}")
        return None
    if namespace and own and namespace != own:
        raise ValueError(f"namespace argument {namespace!r} differs from metadata.namespace {own!r}")
    chosen = namespace or own
    if not chosen:
        raise ValueError(f"{resource} is namespaced: pass namespace= or set metadata.namespace")
    return chosen


def _patch_op(
    verb: str,
    resource: Resource,
    name: str,
    patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    namespace: str | None,
    patch_type: PatchType,
    subresource: str | None,
    query: Mapping[str, Any],
) -> _Op:
    if not isinstance(patch_type, PatchType):
        raise ValueError(f"patch_type must be a PatchType (use apply() for server-side apply), got {patch_type!r}")
    if patch_type is PatchType.JSON:
        if not isinstance(patch, Sequence) or isinstance(patch, (str, bytes)):
            raise ValueError("a JSON patch is a list of operations")
        # Without a test op a repeat may act twice (e.g. ``add`` to ``/-``); with one it fails instead.
        repeatable = any(isinstance(o, Mapping) and o.get("op") == "test" for o in patch)
        body: Any = list(patch)
    else:
        if not isinstance(patch, Mapping):
            raise ValueError(f"a {patch_type.name.lower()} patch is a JSON object (a mapping)")
        repeatable, body = True, dict(patch)
    return _Op(
        verb,
        resource,
        "PATCH",
        resource.path(namespace, name, subresource),
        query,
        body,
        patch_type.value,
        repeatable=repeatable,
    )
