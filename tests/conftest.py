"""Suite-wide rules: in CI an integration test that skips is a failure (a missing control plane
must never pass silently); the control-plane fixtures come from the ``informers.testing`` plugin."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog

pytest_plugins: list[str] = []  # informers.testing.pytest_plugin is registered by its entry point


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and item.get_closest_marker("integration"):
        report.outcome = "failed"
        report.longrepr = f"integration test skipped in CI (not allowed): {report.longrepr}"


@pytest.fixture(autouse=True)
def _structlog_unconfigured() -> Iterator[None]:
    """Each test starts and ends with structlog unconfigured. ``structlog.testing.capture_logs``
    restores the processors with ``configure()``, which leaves structlog "configured" with its
    default console renderer: the library then logs through it (rich tracebacks rendered on the
    event loop take ~0.3 s each), and a later test's timing-sensitive fake clock falls behind."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
