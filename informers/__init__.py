"""informers: shared list-then-watch informers and a thread-safe indexed cache for Kubernetes.

Start here: ``load_config`` -> ``ApiClient`` -> ``InformerFactory`` -> ``await factory.informer(...)``
-> ``informer.add_handler(...)`` and ``informer.store`` reads. The names below are the ones a user
needs; the rest is in documented submodules:

* ``informers.errors``: the whole error tree (every error derives from ``InformerdError``);
* ``informers.events``: watch events and the notification records;
* ``informers.objects``: identity and metadata accessors on raw objects;
* ``informers.indexers``: index functions (by namespace, UID, owner, label) and their names;
* ``informers.store``: the cache (``Store``, ``StoredObject``, replace buffers);
  ``informers.compression``: its opt-in compressed form (the ``compressed`` extra);
* ``informers.handlers``, ``informers.informer``, ``informers.factory``: options, statistics and
  the thread-friendly forms (``InformerFactory.blocking()``);
* ``informers.client``, ``informers.config``, ``informers.resources``: the HTTP client, its
  configuration and discovery; ``informers.clock``: injectable time for tests;
* ``informers.testing``: a real etcd + kube-apiserver for tests; ``informers.testing.fake``: an
  in-memory cluster for unit tests.

Modules whose names start with ``_`` are internal.
"""

from .client import ApiClient
from .config import ClientConfig, load_config
from .errors import ApiError, ConflictError, InformerdError, NotFoundError, SyncTimeoutError
from .events import DeletedFinalStateUnknown, Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from .factory import InformerFactory
from .handlers import HandlerRegistration
from .informer import InformerOptions, SharedInformer
from .objects import RawObject, object_key
from .resources import Resource
from .store import Store

__all__ = [
    "ApiClient",
    "ApiError",
    "ClientConfig",
    "ConflictError",
    "DeletedFinalStateUnknown",
    "HandlerRegistration",
    "InformerFactory",
    "InformerOptions",
    "InformerdError",
    "NotFoundError",
    "Notification",
    "ObjectAdded",
    "ObjectDeleted",
    "ObjectUpdated",
    "RawObject",
    "Resource",
    "SharedInformer",
    "Store",
    "SyncTimeoutError",
    "load_config",
    "object_key",
]
