"""The ready-made health checks over real informers (driven through their reflector with a scripted
client, on a fake clock) and a real controller whose only worker is stuck past its timeout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import orjson
import pytest

from controllers.checks import controllers_synced, informers_synced, watches_healthy, workers_not_wedged
from controllers.controller import Controller
from controllers.probes import HealthCheckError
from controllers.request import Request
from informers._watcher import ListRequest, WatchRequest
from informers.client import Response
from informers.clock import FakeClock
from informers.errors import ForbiddenError, StreamStalledError
from informers.informer import InformerOptions, SharedInformer
from informers.resources import Resource

PODS = Resource("", "v1", "pods", "Pod", True)
WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True)


class ScriptedStream:
    """A watch answer: the given lines, then a normal end, or ``error`` raised after them."""

    def __init__(self, lines: list[bytes], error: BaseException | None = None) -> None:
        self._lines = iter(lines)
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        yield from self._lines
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        return None


class ScriptedClient:
    """Answers the reflector's LIST with one pod and each watch with the next scripted stream."""

    def __init__(self) -> None:
        self.streams: list[ScriptedStream] = []

    def get_json(self, path: str, query: Any = None) -> Any:
        return {
            "metadata": {"resourceVersion": "10"},
            "items": [{"metadata": {"name": "a", "namespace": "default", "uid": "u-a", "resourceVersion": "5"}}],
        }

    def request(self, method: str, path: str, *, query: Any = None) -> Response:
        """The reflector's LIST reads the raw body (its items are decoded one at a time)."""
        return Response(status=200, headers={}, body=orjson.dumps(self.get_json(path, query)))

    def watch(self, path: str, query: Any = None, *, idle_timeout: float) -> ScriptedStream:
        return self.streams.pop(0)


def started_informer(clock: FakeClock, **options: Any) -> tuple[SharedInformer, ScriptedClient]:
    client = ScriptedClient()
    informer = SharedInformer(
        client,
        PODS,
        options=InformerOptions(streaming_list=False, **options),  # type: ignore[arg-type]
        clock=clock,
    )
    informer._started = True  # as run() marks it; the tests drive its reflector by hand
    return informer, client


def list_once(informer: SharedInformer) -> None:
    request = informer.watcher.next_request()
    assert isinstance(request, ListRequest)
    informer.reflector._list(request)


def watch_once(informer: SharedInformer, client: ScriptedClient, stream: ScriptedStream) -> None:
    client.streams.append(stream)
    request = informer.watcher.next_request()
    assert isinstance(request, WatchRequest)
    try:
        informer.reflector._watch(request)
    except Exception as exc:  # what the reflector's loop does with a failed watch
        informer.watcher.on_error(exc)


def verdict(check: Any) -> str | None:
    try:
        check()
    except HealthCheckError as exc:
        return str(exc)
    return None


# -- readiness -------------------------------------------------------------------------------------


def test_informers_synced_names_the_laggards_until_the_first_list() -> None:
    clock = FakeClock()
    informer, _ = started_informer(clock)
    check = informers_synced(lambda: [informer])
    assert verdict(check) == "1 informer(s) not synced: pods.v1 (no error yet)"
    list_once(informer)
    assert verdict(check) is None
    assert verdict(informers_synced(lambda: [])) is None  # nothing to wait for


def test_controllers_synced_until_workers_may_start() -> None:
    controller = Controller(object(), WIDGETS, lambda r, o, c: None, name="widget")  # type: ignore[arg-type]
    check = controllers_synced(lambda: [controller])
    assert verdict(check) == "1 controller(s) not synced: widget"
    controller._synced.set()  # what run() does once caches and handlers synced
    assert verdict(check) is None


# -- watches ---------------------------------------------------------------------------------------


def test_a_quiet_resource_stays_healthy_as_its_watches_end_and_reopen() -> None:
    clock = FakeClock()
    informer, client = started_informer(clock)  # watch timeouts 300-600 s, idle deadline timeout + 30 s
    check = watches_healthy(lambda: [informer], clock=clock)
    list_once(informer)
    for _ in range(5):  # an hour of silence: every watch ends at its timeout, empty, and reopens
        watch_once(informer, client, ScriptedStream([]))
        clock.advance(599)
        assert verdict(check) is None


def test_a_watch_stalled_without_recovering_fails_after_its_deadline() -> None:
    clock = FakeClock()
    informer, client = started_informer(clock)
    check = watches_healthy(lambda: [informer], clock=clock, grace=30)
    list_once(informer)
    watch_once(informer, client, ScriptedStream([], StreamStalledError("no byte within the idle deadline")))
    clock.advance(630 + 30 + 30)  # idle deadline (600 + 30) + one backoff at the cap + grace
    assert verdict(check) is None
    clock.advance(1)
    reason = verdict(check)
    assert reason is not None and reason.startswith("1 informer(s) not recovering: pods.v1: no list page")
    assert "stalled restarts 1" in reason and "StreamStalledError" in reason
    watch_once(informer, client, ScriptedStream([]))  # the next watch is accepted: recovered
    assert verdict(check) is None


def test_the_deadline_follows_a_lower_idle_timeout() -> None:
    clock = FakeClock()
    informer, client = started_informer(clock, idle_timeout=60)
    check = watches_healthy(lambda: [informer], clock=clock, grace=0)
    list_once(informer)
    clock.advance(90)
    assert verdict(check) is None
    clock.advance(1)
    assert verdict(check) is not None


def test_the_deadline_follows_a_lower_backoff_cap_and_grace() -> None:
    clock = FakeClock()
    informer, client = started_informer(clock, idle_timeout=5, backoff_cap=2)
    check = watches_healthy(lambda: [informer], clock=clock, grace=5)
    list_once(informer)
    clock.advance(5 + 2 + 5)  # idle deadline + one backoff at the cap + grace
    assert verdict(check) is None
    clock.advance(1)
    assert verdict(check) is not None


def test_an_informer_never_heard_from_counts_from_when_first_seen_and_unstarted_ones_are_skipped() -> None:
    clock = FakeClock()
    informer, _ = started_informer(clock)
    idle = SharedInformer(ScriptedClient(), PODS, namespace="other", clock=clock)  # type: ignore[arg-type]
    check = watches_healthy(lambda: [informer, idle], clock=clock, grace=0)
    assert verdict(check) is None
    clock.advance(661)
    reason = verdict(check)
    assert reason is not None and "pods.v1:" in reason and "ns=other" not in reason


class RefusingClient(ScriptedClient):
    """Lists work; every watch is refused (a user who may list but not watch)."""

    def watch(self, path: str, query: Any = None, *, idle_timeout: float) -> ScriptedStream:
        if not self.streams:
            raise ForbiddenError("cannot watch pods", status=403, reason="Forbidden")
        return self.streams.pop(0)


def test_a_watch_refused_for_longer_than_its_deadline_fails_even_while_lists_succeed() -> None:
    clock = FakeClock()
    client = RefusingClient()
    informer = SharedInformer(client, PODS, options=InformerOptions(streaming_list=False), clock=clock)  # type: ignore[arg-type]
    informer._started = True
    check = watches_healthy(lambda: [informer], clock=clock, grace=0)
    list_once(informer)
    for _ in range(20):  # refused, relisted (fresh data), refused again... for 700 s
        request = informer.watcher.next_request()
        assert isinstance(request, WatchRequest)
        try:
            informer.reflector._watch(request)
        except ForbiddenError as exc:
            informer.watcher.on_error(exc)
        clock.advance(35)
        list_once(informer)
    reason = verdict(check)
    assert reason is not None and "watch failing for" in reason and "ForbiddenError" in reason
    event = b'{"type":"MODIFIED","object":{"metadata":{"name":"a","namespace":"default","uid":"u-a","resourceVersion":"11"}}}'
    watch_once(informer, client, ScriptedStream([event]))  # granted: the watch works
    assert verdict(check) is None


# -- workers ---------------------------------------------------------------------------------------


def test_a_pool_whose_workers_all_hang_past_the_timeout_is_wedged() -> None:
    clock = FakeClock()
    release = anyio.Event()

    async def ignores_cancellation(request: Request, obj: Any, ctx: Any) -> None:
        with anyio.CancelScope(shield=True):  # a call the timeout cannot free
            await release.wait()

    controller = Controller(
        object(),
        WIDGETS,
        ignores_cancellation,
        name="stuck",  # type: ignore[arg-type]
        reconcile_timeout=1.0,
        clock=clock,
    )
    controller.primary_informer = type(
        "Primary", (), {"store": type("S", (), {"get_by_uid": staticmethod(lambda uid: None)})()}
    )()  # type: ignore[assignment]
    check = workers_not_wedged(controller)
    verdicts: list[str | None] = []

    async def main() -> None:
        controller.queue.add(Request(uid="u1", kind="Widget", name="w", namespace="default"))
        async with anyio.create_task_group() as group:
            group.start_soon(controller.pool.run)
            while controller.statistics().workers.active_workers < 1:
                await anyio.sleep(0.01)
            verdicts.append(verdict(check))  # busy, but only for a moment
            clock.advance(32.5)  # past 2 x timeout + 30 s
            verdicts.append(verdict(check))
            assert verdict(workers_not_wedged(controller, threshold=60)) is None
            release.set()
            while controller.statistics().workers.active_workers:
                await anyio.sleep(0.01)
            verdicts.append(verdict(check))
            group.cancel_scope.cancel()

    anyio.run(main)
    assert verdicts[0] is None and verdicts[2] is None
    assert verdicts[1] == (
        "1 controller(s) wedged: stuck: all 1 worker(s) busy, the oldest call for 32.5 s (limit 32 s)"
    )


def test_without_a_timeout_or_threshold_a_pool_is_never_judged() -> None:
    controller = Controller(object(), WIDGETS, lambda r, o, c: None, name="free")  # type: ignore[arg-type]
    assert verdict(workers_not_wedged(controller)) is None
    with pytest.raises(ValueError):
        workers_not_wedged(controller, threshold=0)


def test_a_bookmark_from_the_future_fails_the_check_once_the_progress_check_saw_it_past_grace() -> None:
    clock = FakeClock()
    informer, client = started_informer(clock)
    check = watches_healthy(lambda: [informer], clock=clock, grace=30)
    list_once(informer)  # the server's resourceVersion is 10
    informer.progress.check()
    assert informer.statistics().progress.stalled_since is None
    future = b'{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"1000000010"}}}'
    watch_once(informer, client, ScriptedStream([future]))
    for _ in range(3):  # every later watch resumes from the future version and sees nothing
        watch_once(informer, client, ScriptedStream([]))
        informer.progress.check()
        clock.advance(15)
    assert informer.watcher.resource_version == "1000000010"
    reason = verdict(check)
    assert reason is not None and "pods.v1: no progress for 45 s" in reason and "ahead of the server" in reason
