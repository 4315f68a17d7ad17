"""Generates ``docs/reference.md``: every config key, command-line flag, environment variable and
metric, read from the code that defines them, so the reference cannot drift.

* config keys: walked from the pydantic model (``controllers.config.DaemonConfig``), nested, with
  the YAML type from its JSON Schema, the default from the field and the field's description;
* flags: walked from the CLI's argparse parser (built with no ``INFORMERD_*`` variable set, so
  the defaults shown are the built-in ones), each with its environment variable;
* metrics: collected from a real ``MetricsExporter`` of a ``Manager`` serving over a
  ``FakeCluster`` (a controller, a handler and leader election, so every family is present).

``python -m controllers._reference [PATH]`` writes the file (default ``docs/reference.md``);
``--check`` exits 1 if the file differs from what would be written (``make docs`` regenerates).
Invariant: the output depends only on the code (no time, no host names, no sample values).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
from pydantic import BaseModel

__all__ = ["ENVIRONMENT", "generate", "main"]

_DEFAULT_PATH = Path("docs/reference.md")

ENVIRONMENT: Mapping[str, str] = {
    "KUBECONFIG": "Path of the kubeconfig file(s) when `--kubeconfig` is not given.",
    "KUBERNETES_SERVICE_HOST": "Set in a pod: the in-cluster configuration (service account token and CA) "
    "is used when no kubeconfig is given.",
    "POD_NAME": "The pod's name (downward API): with `--total-shards` and no `--shard`, the shard is the "
    "StatefulSet ordinal at its end (else the hostname's).",
    "POD_NAMESPACE": "The pod's namespace (downward API): the Lease's namespace when neither the config nor "
    "`--leader-election-namespace` sets one (else the service account's namespace file, else `default`).",
}
"""The variables read besides the flags' ``INFORMERD_*`` ones (a test checks the code reads no other)."""


# --- config -------------------------------------------------------------------------------------


def _schema_type(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _schema_type(defs[name], defs) if "properties" not in defs[name] else "object"
    if "anyOf" in schema:
        return " or ".join(_schema_type(s, defs) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(orjson.dumps(v).decode() for v in schema["enum"])
    if "const" in schema:
        return orjson.dumps(schema["const"]).decode()
    kind = schema.get("type", "any")
    if kind == "array":
        text = f"list of {_schema_type(schema.get('items', {}), defs)}"
    elif kind == "object":
        extra = schema.get("additionalProperties")
        text = f"map of string to {_schema_type(extra, defs)}" if isinstance(extra, dict) else "object"
    else:
        text = str(kind)
    bounds = [
        f"{op} {schema[key]}"
        for key, op in (("exclusiveMinimum", ">"), ("minimum", "≥"), ("exclusiveMaximum", "<"), ("maximum", "≤"))
        if key in schema
    ]
    if "minLength" in schema:
        bounds.append(f"length ≥ {schema['minLength']}")
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return origin is list


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _config_sections(model: type[BaseModel], path: str, out: list[str]) -> None:
    schema = model.model_json_schema(by_alias=True)
    defs, props = schema.get("$defs", {}), schema["properties"]
    title = f"`{path}`" if path else "top level"
    doc = " ".join((model.__doc__ or "").split()).replace("``", "`")
    out += [f"### {title}", "", doc, "", "| Key | Type | Default | Description |", "|---|---|---|---|"]
    nested: list[tuple[type[BaseModel], str]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        full = f"{path}.{key}" if path else key
        sub = _nested_model(field.annotation)
        if field.is_required():
            default = "required"
        else:
            value = field.get_default(call_default_factory=True)
            default = "see below" if isinstance(value, BaseModel) else f"`{orjson.dumps(value).decode()}`"
        if sub is not None:
            child = f"{full}[]" if _is_list(field.annotation) else full
            nested.append((sub, child))
            kind = f"list of object (see `{child}`)" if _is_list(field.annotation) else f"object (see `{child}`)"
        else:
            kind = _schema_type(props[key], defs)
        out.append(f"| `{full}` | {_cell(kind)} | {_cell(default)} | {_cell(field.description or '')} |")
    out.append("")
    for sub, child in nested:
        _config_sections(sub, child, out)


# --- flags --------------------------------------------------------------------------------------


@contextmanager
def _without_informerd_environment() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("INFORMERD_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


_ENV_NOTE = re.compile(r"\s*\[env (INFORMERD_[A-Z0-9_]+)\]$")


def _flag_rows(parser: argparse.ArgumentParser, command: str, out: list[str]) -> None:
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        help_text = action.help or ""
        match = _ENV_NOTE.search(help_text)
        env = f"`{match.group(1)}`" if match else "—"
        help_text = _ENV_NOTE.sub("", help_text)
        if action.option_strings:
            name = ", ".join(f"`{o}`" for o in action.option_strings)
            if action.nargs == 0:
                default = "`false`" if not action.default else "`true`"
            elif action.required:
                default = "required"
            else:
                default = "none" if action.default is None else f"`{action.default}`"
        else:
            name, default = f"`{action.dest}` (positional)", "required"
        if action.choices:
            help_text = f"{help_text} (one of {', '.join(map(str, action.choices))})".strip()
        out.append(f"| {command} | {name} | {default} | {env} | {_cell(help_text)} |")


def _cli_section(out: list[str]) -> None:
    from .cli import _parser

    with _without_informerd_environment():
        parser = _parser()
    out += [
        "| Command | Flag | Default | Environment | Description |",
        "|---|---|---|---|---|",
    ]
    _flag_rows(parser, "(all)", out)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in subparsers._choices_actions}
    commands: list[tuple[str, str]] = []
    for command, sub in subparsers.choices.items():
        commands.append((command, helps.get(command) or ""))
        _flag_rows(sub, f"`{command}`", out)
    out += ["", "Commands:", ""]
    out += [f"- `informerd {command}`: {text}" for command, text in commands]
    out.append("")


# --- metrics ------------------------------------------------------------------------------------


async def _collect_families() -> list[Any]:
    from informers.informer import InformerOptions
    from informers.testing.fake import FakeCluster

    from .context import Context
    from .leader import ElectionOptions
    from .manager import Manager

    cluster = FakeCluster()
    manager = Manager(
        client=cluster,
        name="reference",
        informer_options=InformerOptions(backoff_initial=0.01, backoff_cap=0.05),
        metrics_bind_address="127.0.0.1:0",
        leader_election=True,
        leader_election_namespace="default",
        election_options=ElectionOptions(lease_duration=3, renew_deadline=2, retry_period=0.2),
    )
    reconciled = anyio.Event()

    @manager.reconcile("v1/configmaps", owns=["v1/secrets"])
    async def reconcile(ctx: Context) -> None:
        reconciled.set()

    @manager.on("v1/configmaps")
    def handler(note: Any) -> None:
        return None

    cluster.create("v1/configmaps", {"metadata": {"name": "one", "namespace": "default"}})
    families: list[Any] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(manager.serve)
            await reconciled.wait()
            assert manager.exporter is not None
            families = list(manager.exporter.registry.collect())
            group.cancel_scope.cancel()
    return families


def _metrics_section(out: list[str]) -> None:
    families = anyio.run(_collect_families)
    rows: dict[str, str] = {}
    for family in families:
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels = set(getattr(family, "_labelnames", ()) or ())
        for sample in family.samples:
            labels.update(k for k in sample.labels if k not in ("le", "quantile"))
        shown = ", ".join(f"`{label}`" for label in sorted(labels)) or "—"
        rows[name] = f"| `{name}` | {family.type} | {shown} | {_cell(family.documentation)} |"
    out += ["| Metric | Type | Labels | Help |", "|---|---|---|---|"]
    out += [rows[name] for name in sorted(rows)]
    out.append("")


# --- the document -------------------------------------------------------------------------------


def generate() -> str:
    """The text of ``docs/reference.md``."""
    from .config import DaemonConfig

    out = [
        "# informerd reference",
        "",
        "<!-- GENERATED by `python -m controllers._reference` (`make docs`) from the config model, the CLI's "
        "parser and a live metrics collector. Do not edit by hand: tests/unit/test_reference_docs.py fails "
        "when it is stale. -->",
        "",
        "## Config file",
        "",
        "The YAML file of `informerd run --config` (and `check-config`). Keys are camelCase; unknown keys are "
        "rejected. `informerd config-schema` prints the same model as a JSON Schema.",
        "",
    ]
    _config_sections(DaemonConfig, "", out)
    out += [
        "## Command line",
        "",
        "Every flag marked with an environment variable can be set through it instead; a flag given on "
        "the command line wins over the variable, which wins over the config file. `store_true` flags "
        "read `1`, `true`, `yes` or `on`.",
        "",
    ]
    _cli_section(out)
    out += ["## Other environment variables", "", "| Variable | Meaning |", "|---|---|"]
    out += [f"| `{name}` | {_cell(text)} |" for name, text in sorted(ENVIRONMENT.items())]
    out += [
        "",
        "## Metrics",
        "",
        "Served at `/metrics` (`--metrics-bind-address`). Counters and gauges are read from the components' "
        "`statistics()` at scrape time; histograms expose `_bucket`, `_sum` and `_count` series. The `process_*`, "
        "`python_*` families come from prometheus-client's process, platform and GC collectors (Linux).",
        "",
    ]
    _metrics_section(out)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controllers._reference", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=str(_DEFAULT_PATH), help="where to write (docs/reference.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale instead of writing it")
    args = parser.parse_args(argv)
    text = generate()
    path = Path(args.path)
    if args.check:
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
