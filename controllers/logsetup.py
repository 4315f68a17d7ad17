"""How the ``informerd`` daemon logs: structlog, JSON lines (orjson) or a console format, on stderr.

The library never configures logging (``informers._log``); the daemon does, here, once. Context
bound with ``structlog.contextvars`` (the worker pool binds the controller, resource, namespace,
name, UID and a reconcile id around every reconcile) is merged into every line, including the
lines library code writes during that reconcile. Object contents are never logged: tracebacks
(JSON) list frames without their local variables.
Invariant: after ``configure_logging`` every log line of the process is one JSON object (``json``)
or one human-readable line (``console``) on stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["json", "console"]


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure_logging(level: str = "info", fmt: LogFormat = "json") -> None:
    """Route structlog (and the standard library's ``logging``) to stderr at ``level``."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Tracebacks without local variables: structlog's dict tracebacks show every frame's locals
    # by default, and a reconciler's frames hold the objects (Secret data included).
    tracebacks: Any = (
        structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        if fmt == "json"
        else structlog.processors.format_exc_info
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, tracebacks, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Third-party libraries log through the standard library: same stream, same format.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, tracebacks, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.getLogger("urllib3").setLevel(max(numeric, logging.WARNING))  # its per-request chatter
