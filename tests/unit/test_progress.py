"""The progress check's verdicts (pure logic over a stub client that answers the LIST)."""

from __future__ import annotations

from typing import Any

from informers._progress import ProgressCheck
from informers.errors import ServerError


class StubClient:
    def __init__(self) -> None:
        self.answer: Any = None
        self.queries: list[dict[str, Any]] = []

    def get_json(self, path: str, query: dict[str, Any]) -> Any:
        self.queries.append(dict(query))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def answer(server_rv: str, *items: tuple[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"resourceVersion": server_rv},
        "items": [{"metadata": {"namespace": "ns", "name": n, "resourceVersion": rv}} for n, rv in items],
    }


def make(resume: list[str | None], cache: dict[str, str]) -> tuple[ProgressCheck, StubClient]:
    client = StubClient()
    check = ProgressCheck(
        client,  # type: ignore[arg-type]
        "/api/v1/namespaces/ns/configmaps",
        {"labelSelector": "a=b"},
        resume_point=lambda: resume[0],
        cached_version=cache.get,
    )
    return check, client


def test_a_resume_point_ahead_of_the_server_is_a_stall_at_once_and_clears_when_consistent():
    resume: list[str | None] = ["1000000100"]
    check, client = make(resume, {})
    client.answer = answer("100")
    check.check()
    stats = check.statistics()
    assert client.queries == [{"labelSelector": "a=b", "limit": 1}]
    assert stats.checks == 1 and stats.server_resource_version == "100"
    assert stats.stalled_since is not None and "ahead of the server" in (stats.stall_reason or "")
    since = stats.stalled_since
    client.answer = answer("120")
    check.check()
    assert check.statistics().stalled_since == since  # the stall keeps its start
    resume[0] = "120"
    check.check()
    assert check.statistics().stalled_since is None and check.statistics().stall_reason is None
    assert check.statistics().stalls == 1


def test_an_undelivered_change_is_a_stall_only_when_seen_twice() -> None:
    resume: list[str | None] = ["50"]
    cache = {"ns/a": "40"}
    check, client = make(resume, cache)
    client.answer = answer("70", ("a", "60"))
    check.check()
    assert check.statistics().stalled_since is None  # may simply be on its way
    resume[0] = "65"  # a bookmark moved the resume point past the change: it is lost, not late
    check.check()
    stats = check.statistics()
    assert stats.stalled_since is not None and "ns/a is at resourceVersion 60" in (stats.stall_reason or "")
    assert "the cache has 40 (resume point 65)" in (stats.stall_reason or "")
    cache["ns/a"] = "60"  # delivered after all
    check.check()
    assert check.statistics().stalled_since is None


def test_a_cached_or_newer_version_or_a_different_change_is_no_stall() -> None:
    resume: list[str | None] = ["50"]
    cache = {"ns/a": "61"}
    check, client = make(resume, cache)
    client.answer = answer("70", ("a", "60"))
    check.check()
    check.check()
    assert check.statistics().stalled_since is None  # the cache is already past that version
    del cache["ns/a"]
    check.check()
    client.answer = answer("75", ("a", "72"))  # a newer change each time: not the same one twice
    check.check()
    assert check.statistics().stalled_since is None


def test_failed_checks_and_opaque_versions_draw_no_verdict():
    resume: list[str | None] = ["9"]
    check, client = make(resume, {})
    client.answer = ServerError("boom")
    check.check()
    client.answer = {"no": "metadata"}
    check.check()
    assert check.statistics().check_errors == 2 and check.statistics().checks == 0
    resume[0] = "not-a-number"
    client.answer = answer("5")
    check.check()
    assert check.statistics().stalled_since is None
    resume[0] = None  # before the first list
    check.check()
    assert check.statistics().stalled_since is None and check.statistics().checks == 2
