"""From a validated config file to a ready ``Manager``: plugins loaded, bound and registered.

``manager_from_config`` is what ``informerd run`` does before serving: it loads every plugin the
config names (failing start-up with a ``PluginConfigError`` that lists every binding whose plugin
could not be loaded, each naming the entry point and its distribution),
turns the config's settings into the library's options (client, informers, writer, rate limiters,
predicates by name, ``watches`` mappers exported by the plugin) and registers each reconciler and
handler on one ``Manager``.
Invariant: every plugin is loaded and validated before anything connects to the apiserver, so a
bad config or plugin never leaves a half-started daemon.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from informers.compression import store_compression_problem
from informers.config import ClientConfig, load_config
from informers.informer import InformerOptions
from informers.resources import Resource

from . import predicates as predicate_module
from .config import ConfigProblem, DaemonConfig, RateLimiterSettings, ReconcilerBinding
from .leader import ElectionOptions
from .manager import Manager
from .plugins import HANDLERS_GROUP, RECONCILERS_GROUP, LoadedPlugin, PluginConfigError, PluginError, load_plugin
from .predicates import Predicate
from .ratelimit import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    MaxOfRateLimiter,
    MaxWaitRateLimiter,
    RateLimiter,
)
from .sharding import Shard
from .triggers import ObjectMapper
from .writer import WriterOptions

__all__ = ["client_config", "manager_from_config", "rate_limiter"]


def client_config(config: DaemonConfig, *, kubeconfig: str | None = None) -> ClientConfig:
    """The apiserver connection (kubeconfig or in-cluster) with the config's client settings."""
    base = load_config(kubeconfig)
    c = config.client
    return dataclasses.replace(
        base,
        qps=c.qps,
        burst=c.burst,
        connect_timeout=c.connect_timeout,
        read_timeout=c.read_timeout,
        max_retries=c.max_retries,
    )


def rate_limiter(settings: RateLimiterSettings) -> RateLimiter:
    """controller-runtime's limiter (exponential per key, max-of a token bucket) from settings."""
    limiter: RateLimiter = MaxOfRateLimiter(
        ItemExponentialRateLimiter(settings.base_delay, settings.max_delay),
        BucketRateLimiter(settings.qps, settings.burst),
    )
    if settings.max_wait is not None:
        limiter = MaxWaitRateLimiter(limiter, settings.max_wait)
    return limiter


def _mappers(binding: ReconcilerBinding, plugin: LoadedPlugin) -> dict[Resource | str, ObjectMapper]:
    chosen: dict[Resource | str, ObjectMapper] = {}
    for watch in binding.watches:
        mapper = plugin.mappers.get(watch.mapper)
        if mapper is None:
            known = ", ".join(sorted(plugin.mappers)) or "none"
            raise PluginError(f"{plugin.info.describe()} has no mapper {watch.mapper!r} (it exports: {known})")
        chosen[watch.resource] = mapper
    return chosen


def _register_reconciler(manager: Manager, binding: ReconcilerBinding) -> None:
    plugin = load_plugin(RECONCILERS_GROUP, binding.plugin, binding.options, binding.permissions)
    predicates: list[Predicate] = [getattr(predicate_module, name) for name in binding.predicates]
    manager.reconcile(
        binding.resource,
        owns=binding.owns,
        watches=_mappers(binding, plugin),
        workers=binding.workers,
        timeout=binding.timeout,
        predicates=predicates or None,
        namespace=binding.namespace,
        label_selector=binding.label_selector,
        rate_limiter=rate_limiter(binding.rate_limiter),
        cache_sync_timeout=binding.cache_sync_timeout,
        name=binding.name,
        plugin=plugin.info.name,
    )(plugin.target)


def manager_from_config(
    config: DaemonConfig, *, client: Any = None, client_config: ClientConfig | None = None, shard: Shard | None = None
) -> Manager:
    """A ``Manager`` with every plugin of ``config`` loaded and registered (nothing connects yet).

    ``client``: an already open client (tests: a ``FakeCluster``); else ``client_config``.
    ``shard``: this replica's shard (``--shard``/``--total-shards``); default: no sharding.
    """
    informers, election = config.informers, config.leader_election
    manager = Manager(
        client_config,
        client=client,
        namespace=config.namespace,
        name=config.name,
        informer_options=InformerOptions(
            page_size=informers.page_size,
            streaming_list=informers.streaming_list,
            resync_period=informers.resync_period,
            idle_timeout=informers.idle_timeout,
            progress_check_interval=informers.progress_check_interval,
            backoff_cap=informers.max_backoff,
            store_compression=informers.store_compression,
        ),
        writer_options=WriterOptions(field_manager=config.name),
        drain_timeout=config.drain_timeout,
        metrics_bind_address=config.metrics_bind_address,
        health_probe_bind_address=config.health_probe_bind_address,
        stall_grace=config.health.stall_grace,
        leader_election=election.enabled,
        leader_election_id=election.id,
        leader_election_namespace=election.namespace,
        election_options=ElectionOptions(
            lease_duration=election.lease_duration,
            renew_deadline=election.renew_deadline,
            retry_period=election.retry_period,
        ),
        shard=shard,
    )
    problems: list[ConfigProblem] = []
    compression_problem = store_compression_problem(informers.store_compression)
    if compression_problem is not None:  # found at check-config time, not when an informer starts
        problems.append(ConfigProblem(path="informers.storeCompression", line=None, message=compression_problem))
    for index, binding in enumerate(config.reconcilers):
        try:
            _register_reconciler(manager, binding)
        except PluginError as exc:
            problems.append(ConfigProblem(path=f"reconcilers.{index}.plugin", line=None, message=str(exc)))
    for index, handler in enumerate(config.handlers):
        try:
            plugin = load_plugin(HANDLERS_GROUP, handler.plugin, handler.options, handler.permissions)
        except PluginError as exc:
            problems.append(ConfigProblem(path=f"handlers.{index}.plugin", line=None, message=str(exc)))
            continue
        manager.on(
            handler.resource,
            namespace=handler.namespace,
            label_selector=handler.label_selector,
            resync_period=handler.resync_period,
            plugin=plugin.info.name,
        )(plugin.target)
    if problems:  # every binding was tried: the operator fixes them all in one round
        raise PluginConfigError(problems)
    return manager
