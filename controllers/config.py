"""The daemon's configuration file: what to watch, which plugins handle it, and how hard to push.

One pydantic (v2) model is the single source of truth: it validates the YAML at start-up (unknown
keys are rejected, every value is type- and range-checked), documents every option with its default
(the descriptions below), and generates the JSON Schema that ``informerd config-schema`` prints and
the Helm chart embeds. pydantic was chosen over msgspec for its error locations (each problem
carries its path, which ``load_config_file`` maps back to a line of the file) and its JSON Schema
with descriptions and defaults; parsing speed is irrelevant for a file read once. Keys are camelCase
in YAML (Kubernetes style), snake_case in Python. A plugin may declare its own options model (any
pydantic model): its ``options`` are validated the same way when the plugin is loaded.
Invariant: a ``DaemonConfig`` that exists is valid; ``ConfigFileError`` lists every problem at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from informers.errors import InformerdError

__all__ = [
    "PREDICATE_NAMES",
    "ClientSettings",
    "ConfigFileError",
    "ConfigProblem",
    "DaemonConfig",
    "HandlerBinding",
    "HealthSettings",
    "InformerSettings",
    "LeaderElectionSettings",
    "RateLimiterSettings",
    "ReconcilerBinding",
    "WatchBinding",
    "config_lines",
    "config_schema",
    "load_config_file",
    "parse_config",
]

PREDICATE_NAMES = ("annotations_changed", "generation_changed", "labels_changed", "resource_version_changed")
"""The predicates a config may name (``controllers.predicates``)."""

_Seconds = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ClientSettings(_Model):
    """How the daemon talks to the apiserver (``informers.config.ClientConfig``)."""

    qps: float = Field(
        5.0,
        description="Sustained requests per second (client-go's QPS); negative disables "
        "client-side throttling. Default 5.",
    )
    burst: int = Field(10, ge=1, description="Requests allowed at once before qps applies. Default 10.")
    connect_timeout: _Seconds = Field(10.0, description="Seconds to establish a connection. Default 10.")
    read_timeout: _Seconds = Field(60.0, description="Seconds to wait for an answer (not watches). Default 60.")
    max_retries: int = Field(
        10,
        ge=0,
        description="Repeats of one request after 429/5xx with Retry-After or a dropped GET connection. Default 10.",
    )

    @model_validator(mode="after")
    def _qps_not_zero(self) -> ClientSettings:
        if self.qps == 0:
            raise ValueError("qps must not be 0 (negative disables throttling)")
        return self


class InformerSettings(_Model):
    """Defaults of every shared informer (``informers.informer.InformerOptions``)."""

    streaming_list: bool = Field(
        True, description="Load with a streaming list (sendInitialEvents) where the server supports it. Default true."
    )
    page_size: int | None = Field(500, ge=1, description="LIST page size when listing. Default 500; null: one page.")
    resync_period: _Seconds | None = Field(
        None, description="Default seconds between resyncs for handlers; null: none. Default null."
    )
    idle_timeout: _Seconds | None = Field(
        None, description="Seconds without a byte before a watch counts as stalled. Default: the watch's timeout + 30."
    )
    progress_check_interval: _Seconds | None = Field(
        60.0,
        description="Seconds between progress checks (one LIST with limit=1) that catch a watch waiting for a "
        "resourceVersion the server has not reached or not delivering a change; null: off. Default 60.",
    )
    max_backoff: float = Field(
        30.0,
        ge=0.8,
        description="Largest base delay, seconds, between retries of a failed list or watch (client-go's "
        "reflector: 0.8 s doubling up to it, plus up to 100% jitter). /healthz allows one such "
        "delay. Default 30.",
    )
    store_compression: Literal["zstd"] | None = Field(
        None,
        description="Hold cached objects compressed: zstd, with a dictionary trained on the first list "
        "(pods take 1.7 KB of memory instead of 4.7, a read ~1.7x as long; needs the 'compressed' "
        "extra, pip install 'informerd[compressed]'). Default null: plain JSON.",
    )


class RateLimiterSettings(_Model):
    """controller-runtime's rate limiter: the larger of per-key exponential backoff and a bucket."""

    base_delay: float = Field(0.005, ge=0, description="First retry delay per key, seconds. Default 0.005.")
    max_delay: float = Field(1000.0, ge=0, description="Largest retry delay per key, seconds. Default 1000.")
    qps: float = Field(10.0, gt=0, description="Overall retries per second (token bucket). Default 10.")
    burst: int = Field(100, ge=1, description="Token bucket burst. Default 100.")
    max_wait: _Seconds | None = Field(None, description="Cap on any retry delay, seconds; null: none. Default null.")


class WatchBinding(_Model):
    """Another resource whose changes enqueue primaries, through a mapper the plugin provides."""

    resource: str = Field(description="group/version/plural or a kind, e.g. 'v1/secrets' or 'Secret'.")
    mapper: str = Field(description="Name of a mapper the reconciler plugin exports (its 'mappers').")
    namespace: str | None = Field(None, description="Namespace to watch; default: the reconciler's.")
    label_selector: str | None = Field(None, description="Label selector of the watch. Default none.")


class _Binding(_Model):
    plugin: str = Field(min_length=1, description="Entry point name of the plugin.")
    resource: str = Field(
        min_length=1, description="group/version/plural or a kind, e.g. 'example.com/v1/Backup' or 'v1/configmaps'."
    )
    namespace: str | None = Field(None, description="Namespace to watch; default: the daemon's namespace.")
    label_selector: str | None = Field(None, description="Label selector of the watch. Default none.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="The plugin's own options, validated by its options model."
    )
    permissions: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Write access granted to the plugin: resource (e.g. 'batch/v1/jobs') -> verbs. Must "
        "cover what the plugin declares; the Helm chart turns it into RBAC rules. Reading what the "
        "binding watches is granted without listing it.",
    )


class HandlerBinding(_Binding):
    """A handler plugin bound to a resource: it receives every notification of that resource."""

    field_selector: str | None = Field(None, description="Field selector of the watch. Default none.")
    resync_period: _Seconds | None = Field(
        None, description="Seconds between resyncs delivered to this handler; default: the informers' default."
    )


class ReconcilerBinding(_Binding):
    """A reconciler plugin bound to a primary resource, keyed by UID."""

    name: str | None = Field(None, description="Controller name (metrics label, logs); default: the lower-case kind.")
    owns: list[str] = Field(default_factory=list, description="Child resources whose controller owner is enqueued.")
    watches: list[WatchBinding] = Field(default_factory=list, description="Other resources mapped to primaries.")
    predicates: list[
        Literal["annotations_changed", "generation_changed", "labels_changed", "resource_version_changed"]
    ] = Field(default_factory=list, description="Filters on the primary's updates (all must pass).")
    workers: int = Field(1, ge=1, le=1000, description="Reconciles running at once. Default 1.")
    timeout: _Seconds | None = Field(None, description="Seconds one reconcile may take; null: no limit. Default null.")
    cache_sync_timeout: _Seconds = Field(
        120.0, description="Seconds to wait for caches before failing start-up. Default 120."
    )
    rate_limiter: RateLimiterSettings = Field(
        default_factory=RateLimiterSettings, description="Retry backoff of failed keys."
    )


class HealthSettings(_Model):
    """The liveness checks behind /healthz (``controllers.checks``)."""

    stall_grace: float = Field(
        30.0,
        ge=0,
        description="Seconds /healthz waits past an informer's deadline (its idle timeout + maxBackoff) "
        "before failing its 'watches' check, and past the progress check's first no-progress verdict. "
        "Default 30.",
    )


class LeaderElectionSettings(_Model):
    """Lease leader election (client-go's defaults)."""

    enabled: bool = Field(False, description="Reconcile only while holding the Lease. Default false.")
    id: str | None = Field(None, description="Lease name; default: '<name>-leader'.")
    namespace: str | None = Field(None, description="Lease namespace; default: the pod's namespace, or 'default'.")
    lease_duration: _Seconds = Field(15.0, description="Seconds a lease is valid. Default 15.")
    renew_deadline: _Seconds = Field(10.0, description="Seconds a leader keeps trying to renew. Default 10.")
    retry_period: _Seconds = Field(2.0, description="Seconds between attempts. Default 2.")

    @model_validator(mode="after")
    def _ordered(self) -> LeaderElectionSettings:
        if not self.lease_duration > self.renew_deadline > 1.2 * self.retry_period:
            raise ValueError("need leaseDuration > renewDeadline > 1.2 x retryPeriod")
        if not float(self.lease_duration).is_integer():
            raise ValueError("leaseDuration must be whole seconds (the Lease stores an integer)")
        return self


class DaemonConfig(_Model):
    """The whole file (``informerd run --config``)."""

    name: str = Field(
        "informerd",
        min_length=1,
        description="The manager's name: field manager of writes "
        "and reportingController of Events. Default "
        "'informerd'.",
    )
    namespace: str | None = Field(
        None, description="Namespace every informer is scoped to; null: all namespaces. Default null."
    )
    client: ClientSettings = Field(default_factory=ClientSettings, description="API client settings.")
    informers: InformerSettings = Field(default_factory=InformerSettings, description="Informer defaults.")
    handlers: list[HandlerBinding] = Field(default_factory=list, description="Handler plugins and what they receive.")
    reconcilers: list[ReconcilerBinding] = Field(
        default_factory=list, description="Reconciler plugins and their primaries."
    )
    leader_election: LeaderElectionSettings = Field(
        default_factory=LeaderElectionSettings, description="Leader election."
    )
    health: HealthSettings = Field(default_factory=HealthSettings, description="Liveness checks (/healthz).")
    metrics_bind_address: str = Field(":8080", description="Where /metrics listens; '0' disables. Default ':8080'.")
    health_probe_bind_address: str = Field(
        ":8081", description="Where /healthz and /readyz listen; '0' disables. Default ':8081'."
    )
    drain_timeout: _Seconds = Field(30.0, description="Seconds shutdown waits for in-flight reconciles. Default 30.")

    @model_validator(mode="after")
    def _unique_controller_names(self) -> DaemonConfig:
        names = [r.name or r.resource.rsplit("/", 1)[-1].lower() for r in self.reconcilers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"reconciler names must be unique (set 'name'); repeated: {', '.join(dupes)}")
        return self


class ConfigProblem(BaseModel):
    """One problem in a config file: where (a dotted path and the line, if known) and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path or '<root>'}" + (f" (line {self.line})" if self.line else "")
        return f"{where}: {self.message}"


class ConfigFileError(InformerdError):
    """The config file could not be read or is invalid; ``problems`` lists every one."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems))


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and sequence item."""


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            out[child] = key.start_mark.line + 1
            _lines(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out)


def config_lines(text: str) -> dict[str, int]:
    """The line of every key and list item of YAML ``text`` by its dotted path (as
    ``ConfigProblem.path`` writes it: ``reconcilers.0.plugin``); empty if the text is not YAML."""
    try:
        node = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    return {".".join(str(p) for p in path): line for path, line in lines.items()}


def parse_config(text: str, source: str = "<config>") -> DaemonConfig:
    """Validate YAML text; raise ``ConfigFileError`` with every problem and its line."""
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigFileError(source, [ConfigProblem(path="", line=line, message=f"not valid YAML: {exc}")]) from exc
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(source, [ConfigProblem(path="", line=1, message="the file must be a mapping")])
    try:
        return DaemonConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
            problems.append(ConfigProblem(path=".".join(str(p) for p in loc), line=line, message=error["msg"]))
        raise ConfigFileError(source, problems) from None


def load_config_file(path: str | Path) -> DaemonConfig:
    """Read and validate a config file (see ``parse_config``)."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigFileError(str(file), [ConfigProblem(path="", line=None, message=f"cannot read: {exc}")]) from exc
    return parse_config(text, str(file))


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the file (keys as written in YAML)."""
    schema = DaemonConfig.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "informerd daemon configuration"
    return schema
