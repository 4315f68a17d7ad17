"""controllers: workqueues, worker pools and UID-keyed reconcilers on top of ``informers``.

Start here: ``Controller`` (watch a primary resource, ``owns``/``watches`` others, run a ``Reconciler``
keyed by UID on a worker pool), ``ApiWriter`` for writes, ``set_condition`` and the finalizer helpers,
``EventRecorder``. The workqueue layer (``WorkQueue`` -> ``DelayingQueue`` -> ``RateLimitingQueue``) and
the rate limiters are Kubernetes-free and usable on their own.
"""

from .api import (
    Api,
    BlockingApi,
)
from .context import (
    BlockingContext,
    Context,
    OwnershipError,
)
from .manager import (
    Manager,
)
from .circuit import (
    CircuitBreaker,
    CircuitGroupStatistics,
    CircuitOptions,
    CircuitShedError,
    CircuitState,
    CircuitStatistics,
    is_retryable_failure,
)
from .conditions import (
    ConditionError,
    get_condition,
    is_false,
    is_true,
    is_unknown,
    remove_condition,
    set_condition,
)
from .controller import (
    Controller,
    ControllerStatistics,
    InformerProvider,
)
from .delaying import (
    DelayingQueue,
)
from .errors import (
    ControllerError,
    ControllerStateError,
    ControllerSyncTimeoutError,
    InvalidResultError,
    is_terminal,
    ReconcileCancelledError,
    ReconcileTimeoutError,
    TerminalError,
)
from .finalizers import (
    decide_finalization,
    ensure_finalizer,
    FinalizerResult,
    FinalizerStep,
    handle_finalization,
    has_finalizer,
    reconcile_finalizer,
    remove_finalizer,
)
from .predicates import (
    all_of,
    annotations_changed,
    any_of,
    combine,
    generation_changed,
    labels_changed,
    not_,
    on_update,
    Predicate,
    predicate,
    resource_version_changed,
)
from .ratelimit import (
    BucketRateLimiter,
    default_controller_rate_limiter,
    ItemExponentialRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    MaxWaitRateLimiter,
    RateLimiter,
    RateLimiterStatistics,
)
from .ratelimited import (
    RateLimitingQueue,
)
from .reconciler import (
    ReconcileContext,
    ReconcileFunc,
    Reconciler,
)
from .recorder import (
    CORE_EVENTS,
    EventRecorder,
    EVENTS_V1,
    object_reference,
    RecorderOptions,
    RecorderStatistics,
)
from .request import (
    Request,
)
from .result import (
    as_result,
    Result,
    ResultKind,
)
from .triggers import (
    BoundTrigger,
    for_primary,
    ObjectMapper,
    owns,
    Trigger,
    TriggerKind,
    watches,
)
from .workers import (
    NoopReconcileMetrics,
    ReconcileMetrics,
    WorkerPool,
    WorkerPoolStatistics,
)
from .workqueue import (
    ItemNotProcessingError,
    NoopWorkQueueMetrics,
    QueueEmpty,
    QueueShutDown,
    WorkQueue,
    WorkQueueError,
    WorkQueueMetrics,
    WorkQueueStatistics,
)
from .writer import (
    ApiWriter,
    APPLY_PATCH_CONTENT_TYPE,
    AsyncApiWriter,
    client_config_for_workers,
    PatchType,
    WriterOptions,
    WriterStatistics,
)

__all__ = [
    "Api",
    "BlockingApi",
    "BlockingContext",
    "Context",
    "Manager",
    "OwnershipError",
    "APPLY_PATCH_CONTENT_TYPE",
    "ApiWriter",
    "AsyncApiWriter",
    "BoundTrigger",
    "BucketRateLimiter",
    "CORE_EVENTS",
    "CircuitBreaker",
    "CircuitGroupStatistics",
    "CircuitOptions",
    "CircuitShedError",
    "CircuitState",
    "CircuitStatistics",
    "ConditionError",
    "Controller",
    "ControllerError",
    "ControllerStateError",
    "ControllerStatistics",
    "ControllerSyncTimeoutError",
    "DelayingQueue",
    "EVENTS_V1",
    "EventRecorder",
    "FinalizerResult",
    "FinalizerStep",
    "InformerProvider",
    "InvalidResultError",
    "ItemExponentialRateLimiter",
    "ItemFastSlowRateLimiter",
    "ItemNotProcessingError",
    "MaxOfRateLimiter",
    "MaxWaitRateLimiter",
    "NoopReconcileMetrics",
    "NoopWorkQueueMetrics",
    "ObjectMapper",
    "PatchType",
    "Predicate",
    "QueueEmpty",
    "QueueShutDown",
    "RateLimiter",
    "RateLimiterStatistics",
    "RateLimitingQueue",
    "ReconcileCancelledError",
    "ReconcileContext",
    "ReconcileFunc",
    "ReconcileMetrics",
    "ReconcileTimeoutError",
    "Reconciler",
    "RecorderOptions",
    "RecorderStatistics",
    "Request",
    "Result",
    "ResultKind",
    "TerminalError",
    "Trigger",
    "TriggerKind",
    "WorkQueue",
    "WorkQueueError",
    "WorkQueueMetrics",
    "WorkQueueStatistics",
    "WorkerPool",
    "WorkerPoolStatistics",
    "WriterOptions",
    "WriterStatistics",
    "all_of",
    "annotations_changed",
    "any_of",
    "as_result",
    "client_config_for_workers",
    "combine",
    "decide_finalization",
    "default_controller_rate_limiter",
    "ensure_finalizer",
    "for_primary",
    "generation_changed",
    "get_condition",
    "handle_finalization",
    "has_finalizer",
    "is_false",
    "is_retryable_failure",
    "is_terminal",
    "is_true",
    "is_unknown",
    "labels_changed",
    "not_",
    "object_reference",
    "on_update",
    "owns",
    "predicate",
    "reconcile_finalizer",
    "remove_condition",
    "remove_finalizer",
    "resource_version_changed",
    "set_condition",
    "watches",
]
