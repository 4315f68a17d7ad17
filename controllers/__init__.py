"""controllers: reconcilers keyed by object UID on top of ``informers``, and the workqueues under them.

Start here: a ``Manager`` and its ``@manager.reconcile(...)`` decorator; the reconciler receives a
``Context`` (``BlockingContext`` for a plain ``def``) and returns a ``Result`` or raises
``TerminalError``. The names below are the ones a user needs; the rest is in documented submodules:

* ``controllers.controller``, ``controllers.triggers``, ``controllers.predicates``,
  ``controllers.reconciler``: the lower layer under the front door (``Controller`` with
  ``owns``/``watches`` triggers, predicates, the ``(request, obj, ctx)`` reconciler contract);
* ``controllers.api``, ``controllers.writer``, ``controllers.circuit``: writes (``Api``/``BlockingApi``
  by resource name over ``ApiWriter``, retries, the per-group circuit breaker);
* ``controllers.finalizers``, ``controllers.conditions``, ``controllers.recorder``: finalizer,
  status-condition and Kubernetes Event helpers;
* ``controllers.workqueue``, ``controllers.delaying``, ``controllers.ratelimited``,
  ``controllers.ratelimit``: the Kubernetes-free queues and rate limiters (extension points:
  pass your own ``RateLimiter``);
* ``controllers.leader``, ``controllers.sharding``: Lease leader election
  (``async with LeaderElector(...).leadership():``) and sharding by UID across replicas
  (``Controller(key_filter=ShardFilter(shard))``);
* ``controllers.errors``: the controller's errors (all ``informers.errors.InformerdError``).
* ``controllers.metrics``, ``controllers.observers``, ``controllers.probes``, ``controllers.checks``,
  ``controllers.servers``: observability (the Prometheus exporter and its histogram hooks, health
  checks with controller-runtime's ``/healthz`` and ``/readyz`` semantics, the HTTP servers).

Modules whose names start with ``_`` are internal.
"""

from .context import BlockingContext, Context
from .controller import Controller
from .errors import TerminalError
from .manager import Manager
from .request import Request
from .result import Result
from .triggers import owns, watches
from .writer import ApiWriter, WriterOptions

__all__ = [
    "ApiWriter",
    "BlockingContext",
    "Context",
    "Controller",
    "Manager",
    "Request",
    "Result",
    "TerminalError",
    "WriterOptions",
    "owns",
    "watches",
]
