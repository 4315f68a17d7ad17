"""``docs/reference.md`` is generated (``make docs``) from the config model, the CLI's parser and a
live metrics collector; these tests fail when it is stale, and when the code reads an environment
variable the reference does not list."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from controllers._reference import ENVIRONMENT, generate
from controllers.config import DaemonConfig

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference.md"
HOW = "docs/reference.md is stale: regenerate it with `make docs` (python -m controllers._reference) and commit it"


def test_the_reference_is_up_to_date():
    expected = generate()
    current = REFERENCE.read_text() if REFERENCE.exists() else ""
    if current != expected:
        diff = "".join(
            list(difflib.unified_diff(current.splitlines(True), expected.splitlines(True), "committed", "generated"))[
                :60
            ]
        )
        raise AssertionError(f"{HOW}\n{diff}")


def test_the_reference_names_every_config_key_flag_and_core_metric():
    text = generate()
    for key in ("metricsBindAddress", "leaderElection.leaseDuration", "reconcilers[].rateLimiter.baseDelay"):
        assert f"`{key}`" in text
    for name in DaemonConfig.model_fields:
        alias = DaemonConfig.model_fields[name].alias or name
        assert f"| `{alias}` |" in text
    for env in ("INFORMERD_METRICS_BIND_ADDRESS", "INFORMERD_LEADER_ELECT", "INFORMERD_TOTAL_SHARDS"):
        assert f"`{env}`" in text
    for metric in (
        "controller_runtime_reconcile_total",
        "workqueue_depth",
        "rest_client_requests_total",
        "leader_election_master_status",
        "informerd_informer_cached_objects",
    ):
        assert re.search(rf"^\| `{metric}` \| \w+ \|", text, re.M), metric


def test_every_environment_variable_the_code_reads_is_documented():
    read: set[str] = set()
    for package in ("informers", "controllers"):
        for path in (ROOT / package).glob("*.py"):
            source = path.read_text()
            if "environ" in source and path.name != "_reference.py":
                read |= {name for name in re.findall(r'"([A-Z][A-Z0-9_]{2,})"', source) if name != "INFORMERD_"}
    assert read and read <= set(ENVIRONMENT), sorted(read - set(ENVIRONMENT))
