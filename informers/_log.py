"""Library logging that stays quiet unless the application asked for logs.

Every module of ``informers`` and ``controllers`` logs through ``get_logger(__name__)``: structured
calls (``log.info("informer synced", informer=name, objects=n)``), bound context (``log.bind``).
Where the lines go is the application's choice, made at the moment of each call:

* if the application configured structlog (``structlog.configure``, as the ``informerd`` daemon
  does), they go through that configuration;
* otherwise they become standard ``logging`` records of the loggers ``informers.*`` and
  ``controllers.*`` (fields rendered as ``key=value`` after the event), which print nothing unless
  the application configured ``logging`` (both packages' root loggers carry a ``NullHandler``, so
  Python's last-resort handler never writes to the terminal).

Context bound with ``bind_context`` (the worker pool binds the controller, resource, key and a
reconcile id around each reconcile) is carried by ``contextvars``: it rides along into threads
started with a copy of the context (``_bridge.to_thread`` does that), is merged into every line
that structlog's ``merge_contextvars`` processor sees (the daemon's configuration has it), and is
added to the fields of the standard-library fallback lines.

Invariant: importing and using the packages writes nothing to stdout or stderr by itself.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping
from typing import Any

import structlog
import structlog.contextvars

__all__ = ["Logger", "bind_context", "get_logger", "reset_context"]

for _package in ("informers", "controllers"):
    logging.getLogger(_package).addHandler(logging.NullHandler())

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
}


class Logger:
    """A structured logger routed as the module docstring says; cheap to create and to bind."""

    __slots__ = ("_context", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}

    def bind(self, **fields: Any) -> Logger:
        return Logger(self._name, {**self._context, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        fields.setdefault("exc_info", True)
        self._emit("error", event, fields)

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if structlog.is_configured():
            getattr(structlog.get_logger(self._name), level)(event, **self._context, **fields)
            return
        logger = logging.getLogger(self._name)
        levelno = _LEVELS[level]
        if not logger.isEnabledFor(levelno):
            return
        exc_info = fields.pop("exc_info", None)
        merged = {**structlog.contextvars.get_contextvars(), **self._context, **fields}
        message = " ".join([event, *(f"{key}={value!r}" for key, value in merged.items())])
        logger.log(levelno, message, exc_info=exc_info)


def get_logger(name: str) -> Logger:
    """The logger for module ``name`` (pass ``__name__``)."""
    return Logger(name)


def bind_context(**fields: Any) -> Mapping[str, contextvars.Token[Any]]:
    """Bind ``fields`` to every line logged in the current context (task or thread) until
    ``reset_context`` is called with the returned tokens."""
    return structlog.contextvars.bind_contextvars(**fields)


def reset_context(tokens: Mapping[str, contextvars.Token[Any]]) -> None:
    """Undo one ``bind_context`` (restores what was bound before it, in the same context)."""
    structlog.contextvars.reset_contextvars(**tokens)
