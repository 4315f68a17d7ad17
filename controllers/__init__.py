"""controllers: workqueues, worker pools and UID-keyed reconcilers on top of ``informers``.

The workqueue layer (``WorkQueue`` -> ``DelayingQueue`` -> ``RateLimitingQueue``) and the rate
limiters are Kubernetes-free and usable on their own.
"""

from .delaying import DelayingQueue
from .ratelimit import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    MaxOfRateLimiter,
    MaxWaitRateLimiter,
    RateLimiter,
    RateLimiterStatistics,
    default_controller_rate_limiter,
)
from .ratelimited import RateLimitingQueue
from .request import Request
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

__all__ = [
    "BucketRateLimiter",
    "DelayingQueue",
    "ItemExponentialRateLimiter",
    "ItemNotProcessingError",
    "MaxOfRateLimiter",
    "MaxWaitRateLimiter",
    "NoopWorkQueueMetrics",
    "QueueEmpty",
    "QueueShutDown",
    "RateLimiter",
    "RateLimiterStatistics",
    "RateLimitingQueue",
    "Request",
    "WorkQueue",
    "WorkQueueError",
    "WorkQueueMetrics",
    "WorkQueueStatistics",
    "default_controller_rate_limiter",
]
