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

Invariant: importing and using the packages writes nothing to stdout or stderr by itself.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["Logger", "get_logger"]

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
        merged = {**self._context, **fields}
        message = " ".join([event, *(f"{key}={value!r}" for key, value in merged.items())])
        logger.log(levelno, message, exc_info=exc_info)


def get_logger(name: str) -> Logger:
    """The logger for module ``name`` (pass ``__name__``)."""
    return Logger(name)
