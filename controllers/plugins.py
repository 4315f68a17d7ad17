"""Plugins: handlers and reconcilers that third-party packages register as Python entry points.

A package declares, in its metadata, entry points in the groups ``informerd.handlers`` and
``informerd.reconcilers`` naming a plugin factory made with the decorators here::

    class Options(BaseModel):
        record_namespace: str = "backups"

    @reconciler_plugin(options=Options)
    def backup(options: Options) -> Reconcile:
        async def reconcile(ctx: Context) -> Result | None: ...
        return reconcile

The daemon's config binds a plugin by its entry point name to a resource and gives it ``options``,
which are validated by the plugin's options model (any pydantic model; none: no options allowed).
A reconciler factory returns ``async def reconcile(ctx)`` or ``def reconcile(ctx)`` (the front
door's contract, ``controllers.context``); a handler factory returns ``fn(notification)``, plain or
``async``. ``mappers`` names the functions a config's ``watches`` entries may use.
Invariant: ``load_*`` either returns a ready plugin or raises ``PluginError`` naming the entry point,
its distribution and version, and what went wrong (import, bad options, construction).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from informers.errors import InformerdError

from .config import ConfigProblem
from .triggers import ObjectMapper

__all__ = [
    "HANDLERS_GROUP",
    "RECONCILERS_GROUP",
    "LoadedPlugin",
    "PluginConfigError",
    "PluginError",
    "PluginInfo",
    "PluginSpec",
    "discover",
    "handler_plugin",
    "load_plugin",
    "reconciler_plugin",
]

HANDLERS_GROUP = "informerd.handlers"
RECONCILERS_GROUP = "informerd.reconcilers"

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PluginSpec:
    """What the decorators attach to a factory: its kind, options model and named mappers."""

    kind: str
    """``handler`` or ``reconciler``."""
    options: type[BaseModel] | None = None
    mappers: Mapping[str, ObjectMapper] = field(default_factory=dict)
    permissions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """What the plugin writes, beyond reading what it is bound to: resource (as the config names
    resources, e.g. ``batch/v1/jobs``) -> verbs. A config binding must grant at least these (its
    ``permissions``), and the Helm chart turns the config's grants into RBAC rules."""


def reconciler_plugin(
    *,
    options: type[BaseModel] | None = None,
    mappers: Mapping[str, ObjectMapper] | None = None,
    permissions: Mapping[str, Sequence[str]] | None = None,
) -> Callable[[_F], _F]:
    """Mark ``factory(options) -> reconcile`` as a reconciler plugin (see the module docstring)."""

    def mark(factory: _F) -> _F:
        spec = PluginSpec("reconciler", options, dict(mappers or {}), _verbs(permissions))
        factory.__informerd_plugin__ = spec  # type: ignore[attr-defined]
        return factory

    return mark


def handler_plugin(
    *, options: type[BaseModel] | None = None, permissions: Mapping[str, Sequence[str]] | None = None
) -> Callable[[_F], _F]:
    """Mark ``factory(options) -> fn(notification)`` as a handler plugin."""

    def mark(factory: _F) -> _F:
        factory.__informerd_plugin__ = PluginSpec("handler", options, {}, _verbs(permissions))  # type: ignore[attr-defined]
        return factory

    return mark


def _verbs(permissions: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    return {resource: tuple(sorted(set(verbs))) for resource, verbs in (permissions or {}).items()}


@dataclass(frozen=True)
class PluginInfo:
    """One discovered entry point."""

    name: str
    group: str
    value: str
    """``module:attribute`` as declared."""
    distribution: str | None
    version: str | None

    @property
    def kind(self) -> str:
        return "handler" if self.group == HANDLERS_GROUP else "reconciler"

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "an unknown distribution"
        return f"{self.kind} plugin {self.name!r} ({self.value}, from {dist})"


class PluginError(InformerdError):
    """A plugin could not be found, imported, configured or constructed."""


class PluginConfigError(PluginError):
    """Some bindings of a config name plugins that could not be loaded; ``problems`` lists each one
    with its path in the config (``reconcilers.0.plugin``) and the ``PluginError``'s message."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} plugin problem(s):\n" + "\n".join(f"  {p}" for p in self.problems))


@dataclass(frozen=True)
class LoadedPlugin:
    """A constructed plugin: ``target`` is the reconcile function or the notification handler."""

    info: PluginInfo
    target: Callable[..., Any]
    mappers: Mapping[str, ObjectMapper]
    permissions: Mapping[str, tuple[str, ...]]


def _info(ep: EntryPoint) -> PluginInfo:
    dist = ep.dist
    return PluginInfo(ep.name, ep.group, ep.value, dist.name if dist else None, dist.version if dist else None)


def discover() -> list[PluginInfo]:
    """Every installed handler and reconciler plugin, sorted by group and name."""
    found = [_info(ep) for group in (HANDLERS_GROUP, RECONCILERS_GROUP) for ep in entry_points(group=group)]
    return sorted(found, key=lambda p: (p.group, p.name))


def _entry_point(group: str, name: str) -> EntryPoint:
    matches = [ep for ep in entry_points(group=group) if ep.name == name]
    if not matches:
        known = ", ".join(sorted(ep.name for ep in entry_points(group=group))) or "none installed"
        raise PluginError(f"no {group} plugin named {name!r} (installed: {known})")
    if len(matches) > 1:
        sources = ", ".join(str(_info(ep).distribution) for ep in matches)
        raise PluginError(f"{group} plugin {name!r} is declared by several distributions: {sources}")
    return matches[0]


def load_plugin(
    group: str, name: str, options: Mapping[str, Any], granted: Mapping[str, Sequence[str]] | None = None
) -> LoadedPlugin:
    """Import the plugin ``name`` of ``group``, validate ``options``, check that ``granted`` (the
    config binding's ``permissions``; None skips the check) covers what it declares, construct it."""
    ep = _entry_point(group, name)
    info = _info(ep)
    try:
        factory = ep.load()
    except Exception as exc:
        raise PluginError(f"cannot import {info.describe()}: {type(exc).__name__}: {exc}") from exc
    spec: PluginSpec | None = getattr(factory, "__informerd_plugin__", None)
    if spec is None or spec.kind != info.kind:
        raise PluginError(f"{info.describe()} is not marked with @{info.kind}_plugin")
    if spec.options is None:
        if options:
            raise PluginError(f"{info.describe()} takes no options, got {sorted(options)}")
        validated: Any = None
    else:
        try:
            validated = spec.options.model_validate(dict(options))
        except ValidationError as exc:
            problems = "; ".join(f"options.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise PluginError(f"invalid options for {info.describe()}: {problems}") from None
    if granted is not None:
        missing = {r: sorted(set(v) - set(granted.get(r, ()))) for r, v in spec.permissions.items()}
        missing = {r: v for r, v in missing.items() if v}
        if missing:
            wanted = "; ".join(f"{r}: {', '.join(v)}" for r, v in sorted(missing.items()))
            raise PluginError(
                f"{info.describe()} needs permissions the config does not grant: {wanted} "
                "(add them to the binding's 'permissions')"
            )
    try:
        target = factory(validated)
    except Exception as exc:
        raise PluginError(f"{info.describe()} failed to start: {type(exc).__name__}: {exc}") from exc
    if not callable(target):
        raise PluginError(f"{info.describe()} returned {type(target).__name__}, not a function")
    return LoadedPlugin(info, target, spec.mappers, spec.permissions)
