"""Lease leader election, rule by rule, against an in-memory Lease API behind a real ``ApiWriter``,
with a ``FakeClock`` (and a sleep that moves it) so every timing rule is exact: acquiring a missing,
free or expired Lease; respecting a valid foreign one by *local observation* time whatever its
renewTime says (clock skew); optimistic renewal; conflicts; losing at the renew deadline or at once
to a foreign holder; release and the standby taking over at once; leaseTransitions; Events. Two
tests use the real clock: a hung renewal abandoned at the deadline, and the watchdog delivering
the loss while the event loop is blocked."""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest

from controllers.errors import ControllerStateError
from controllers.leader import (
    ElectionOptions,
    LeaderElectionLostError,
    LeaderElector,
    LeaseRecord,
    default_identity,
)
from controllers.writer import ApiWriter, WriterOptions
from informers.client import Response
from informers.clock import SYSTEM_CLOCK, Clock, FakeClock
from informers.config import ClientConfig
from informers.errors import TransportError, api_error_from_response

BACKENDS = ("asyncio", "trio")
PATH = "/apis/coordination.k8s.io/v1/namespaces/ns/leases"


class LeaseServer:
    """Just enough of the Lease API: GET / POST / PUT with resourceVersion preconditions.
    ``down`` makes every request fail without an answer; ``hang`` blocks requests until set;
    ``before`` runs before each request (to interleave another writer)."""

    def __init__(self) -> None:
        self.config = ClientConfig(host="https://apiserver.test", pool_maxsize=10)
        self.lock = threading.Lock()
        self.lease: dict[str, Any] | None = None
        self.rv = 0
        self.requests: list[tuple[str, str | None]] = []  # (method, holder written)
        self.down = False
        self.hang: threading.Event | None = None
        self.before: Callable[[str], None] | None = None

    def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Response:
        if self.before is not None:
            self.before(method)
        if self.hang is not None:
            self.hang.wait(30)
        with self.lock:
            holder = body["spec"]["holderIdentity"] if isinstance(body, Mapping) else None
            self.requests.append((method, holder))
            if self.down:
                raise TransportError(f"{method} {path}: connection refused")
            if method == "GET":
                if self.lease is None:
                    raise self.error(404, "NotFound", method, path)
                return self.ok(self.lease)
            if method == "POST":
                if self.lease is not None:
                    raise self.error(409, "AlreadyExists", method, path)
                return self.store(body, 201)
            assert method == "PUT" and path == f"{PATH}/lock"
            if (
                self.lease is None
                or body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]
            ):
                raise self.error(409, "Conflict", method, path)
            return self.store(body, 200)

    def store(self, body: Mapping[str, Any], status: int) -> Response:
        self.rv += 1
        self.lease = copy.deepcopy(dict(body))
        self.lease["metadata"] = {**body["metadata"], "resourceVersion": str(self.rv), "uid": "lease-uid"}
        return self.ok(self.lease, status)

    @staticmethod
    def ok(obj: Any, status: int = 200) -> Response:
        return Response(status=status, headers={}, body=orjson.dumps(obj))

    @staticmethod
    def error(code: int, reason: str, method: str, path: str) -> Exception:
        status = {"kind": "Status", "code": code, "reason": reason, "message": f"{reason} ({method})"}
        return api_error_from_response(code, orjson.dumps(status), {}, method=method, path=path)

    # -- what another writer does ---------------------------------------------------------------
    def put_record(self, record: LeaseRecord, **labels: str) -> None:
        with self.lock:
            assert self.lease is not None
            body = {**self.lease, "spec": record.spec()}
            if labels:
                body["metadata"] = {**body["metadata"], "labels": labels}
            self.store(body, 200)

    @property
    def record(self) -> LeaseRecord:
        assert self.lease is not None
        return LeaseRecord.from_lease(self.lease)

    def writes(self) -> list[tuple[str, str | None]]:
        return [r for r in self.requests if r[0] != "GET"]


class Sleeper:
    """The elector's sleep: moves the fake clock instead of waiting; ``hook(n)`` runs after the
    n-th sleep (1-based)."""

    def __init__(self, clock: FakeClock, hook: Callable[[int], None] | None = None) -> None:
        self.clock = clock
        self.hook = hook
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)
        if self.hook is not None:
            self.hook(len(self.calls))
        await anyio.lowlevel.checkpoint()


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str, str]] = []

    def record(self, regarding: Mapping[str, Any], event_type: str, reason: str, note: str, **_: Any) -> bool:
        self.recorded.append((regarding["metadata"]["name"], event_type, reason, note))
        return True


def elector_for(server: LeaseServer, identity: str, clock: Clock, **kwargs: Any) -> LeaderElector:
    writer = ApiWriter(server, WriterOptions(retries=0), clock=clock, sleep=lambda s: None)  # type: ignore[arg-type]
    kwargs.setdefault("watchdog", False)
    kwargs.setdefault("rng", random.Random(1))
    return LeaderElector(writer, "lock", "ns", identity=identity, clock=clock, **kwargs)


def run(fn: Callable[[], Any], backend: str = "asyncio") -> None:
    anyio.run(fn, backend=backend)


def foreign_lease(
    server: LeaseServer,
    holder: str,
    renew_time: str = "1999-01-01T00:00:00.000000Z",
    duration: int = 15,
    transitions: int = 3,
) -> None:
    server.store(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "lock", "namespace": "ns"},
            "spec": LeaseRecord(holder, duration, renew_time, renew_time, transitions).spec(),
        },
        201,
    )


# -- options ----------------------------------------------------------------------------------


def test_options_default_to_controller_runtime_and_validate_client_go_rules() -> None:
    options = ElectionOptions()
    assert (options.lease_duration, options.renew_deadline, options.retry_period) == (15, 10, 2)
    ElectionOptions(3, 2, 0.5)
    for bad in [(10, 10, 2), (15, 2.4, 2), (15.5, 10, 2), (0, 0, 0), (15, 10, -1)]:
        with pytest.raises(ValueError):
            ElectionOptions(*bad)


def test_identity_is_hostname_underscore_uuid() -> None:
    host, _, tail = default_identity().rpartition("_")
    assert host and len(tail) == 36 and tail.count("-") == 4


# -- acquiring --------------------------------------------------------------------------------


def test_a_missing_lease_is_created_with_us_as_holder() -> None:
    server, clock = LeaseServer(), FakeClock()
    elector = elector_for(server, "a", clock)

    async def main() -> None:
        assert await elector.try_acquire_or_renew()

    run(main)
    record = server.record
    assert record.holder_identity == "a" and record.lease_duration_seconds == 15
    assert record.leader_transitions == 0 and record.acquire_time == record.renew_time
    assert record.renew_time == "2023-11-14T22:13:20.000000Z"  # FakeClock's wall time, MicroTime format
    assert server.requests == [("GET", None), ("POST", "a")]
    stats = elector.statistics()
    assert stats.holder == "a" and stats.last_renew == clock.time()


def test_a_released_lease_is_taken_at_once_and_counts_a_transition() -> None:
    server, clock = LeaseServer(), FakeClock()
    foreign_lease(server, "", duration=1, transitions=4)

    async def main() -> None:
        assert await elector_for(server, "a", clock).try_acquire_or_renew()

    run(main)
    assert server.record.holder_identity == "a" and server.record.leader_transitions == 5


def test_a_valid_foreign_lease_is_respected_by_local_observation_time_not_renew_time() -> None:
    """The holder's renewTime is from 1999 (its clock is far behind ours): irrelevant. We take the
    Lease only after we have seen no change for leaseDurationSeconds on our own clock."""
    server, clock = LeaseServer(), FakeClock()
    foreign_lease(server, "b")
    elector = elector_for(server, "a", clock)

    async def attempt_after(seconds: float) -> bool:
        clock.advance(seconds)
        return await elector.try_acquire_or_renew()

    async def main() -> None:
        assert not await attempt_after(0)  # first sight: observed now
        assert not await attempt_after(14.9)
        # b renews (any change of the record counts, whatever its timestamps say)
        server.put_record(LeaseRecord("b", 15, "1999-01-01T00:00:00.000000Z", "1999-01-01T00:00:10.000000Z", 3))
        assert not await attempt_after(0.2)  # seen changed: observed again, now
        assert not await attempt_after(14.9)
        assert await attempt_after(0.2)

    run(main)
    record = server.record
    assert record.holder_identity == "a" and record.leader_transitions == 4
    assert server.writes() == [("PUT", "a")]  # nothing written until the takeover
    assert elector.statistics().transitions == 4


def test_clock_skew_between_two_electors_is_harmless() -> None:
    """a's wall clock is hours ahead of b's and their monotonic clocks share no origin: b still
    waits exactly 15 s of its own time after a's last change, never more, never less."""
    server = LeaseServer()
    clock_a = FakeClock(start=50.0, wall=1_900_000_000.0)
    clock_b = FakeClock(start=9_000.0, wall=1_600_000_000.0)
    a, b = elector_for(server, "a", clock_a), elector_for(server, "b", clock_b)

    async def main() -> None:
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()  # renewTime says 2030 to b: still only "a change"
        for _ in range(7):  # a renews every 2 s (of its clock), b looks every 2 s (of its clock)
            clock_a.advance(2)
            clock_b.advance(2)
            assert await a.try_acquire_or_renew()
            assert not await b.try_acquire_or_renew()
        clock_b.advance(14.9)  # a crashed: no change for 14.9 s of b's clock
        assert not await b.try_acquire_or_renew()
        clock_b.advance(0.2)
        assert await b.try_acquire_or_renew()

    run(main)
    assert server.record.holder_identity == "b" and server.record.leader_transitions == 1


def test_two_candidates_creating_at_once_one_wins() -> None:
    server, clock = LeaseServer(), FakeClock()
    a, b = elector_for(server, "a", clock), elector_for(server, "b", clock)

    def a_creates_first(method: str) -> None:
        if method == "POST" and server.lease is None:
            server.before = None
            anyio.from_thread.run(a.try_acquire_or_renew)

    async def main() -> None:
        server.before = a_creates_first
        assert not await b.try_acquire_or_renew()  # b read 404, a created, b's create conflicts
        assert "AlreadyExistsError" in (b.statistics().last_error or "")
        assert not await b.try_acquire_or_renew()  # and b now respects a's fresh lease

    run(main)
    assert server.record.holder_identity == "a"


# -- renewing ---------------------------------------------------------------------------------


def test_a_leader_renews_optimistically_with_one_put_keeping_acquire_time_and_transitions() -> None:
    server, clock = LeaseServer(), FakeClock()
    foreign_lease(server, "", duration=1, transitions=2)
    elector = elector_for(server, "a", clock)

    async def main() -> None:
        assert await elector.try_acquire_or_renew()
        acquired = server.record
        server.requests.clear()
        clock.advance(2)
        assert await elector.try_acquire_or_renew()
        assert server.requests == [("PUT", "a")]  # no read: the fast path
        assert server.record.acquire_time == acquired.acquire_time
        assert server.record.renew_time != acquired.renew_time
        assert server.record.leader_transitions == 3

    run(main)


def test_a_conflict_means_someone_else_wrote_reread_and_renew_if_still_ours() -> None:
    server, clock = LeaseServer(), FakeClock()
    elector = elector_for(server, "a", clock)

    async def main() -> None:
        assert await elector.try_acquire_or_renew()
        server.put_record(server.record, team="x")  # a label edit bumps the resourceVersion
        server.requests.clear()
        clock.advance(2)
        assert await elector.try_acquire_or_renew()
        assert server.requests == [("PUT", "a"), ("GET", None), ("PUT", "a")]
        assert server.lease is not None and server.lease["metadata"]["labels"] == {"team": "x"}
        assert "ConflictError" in (elector.statistics().last_error or "")

    run(main)
    assert server.record.leader_transitions == 0


def test_a_conflict_from_a_new_holder_is_not_overwritten() -> None:
    server, clock = LeaseServer(), FakeClock()
    elector = elector_for(server, "a", clock)

    async def main() -> None:
        assert await elector.try_acquire_or_renew()
        server.put_record(LeaseRecord("b", 15, "t", "t", 1))  # b took it (say, an operator forced it)
        clock.advance(2)
        assert not await elector.try_acquire_or_renew()

    run(main)
    assert server.record.holder_identity == "b"
    assert elector.statistics().holder == "b"


def test_spec_fields_the_elector_does_not_manage_are_kept() -> None:
    server, clock = LeaseServer(), FakeClock()
    foreign_lease(server, "", duration=1)
    assert server.lease is not None
    server.lease["spec"]["strategy"] = "OldestEmulationVersion"

    async def main() -> None:
        elector = elector_for(server, "a", clock)
        assert await elector.try_acquire_or_renew()
        clock.advance(2)
        assert await elector.try_acquire_or_renew()
        assert await elector.release()

    run(main)
    assert server.lease["spec"]["strategy"] == "OldestEmulationVersion"


# -- releasing --------------------------------------------------------------------------------


def test_release_frees_the_lease_keeping_transitions_and_a_standby_takes_over_at_once() -> None:
    server, clock = LeaseServer(), FakeClock()
    a, b = elector_for(server, "a", clock), elector_for(server, "b", clock)

    async def main() -> None:
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        assert await a.release()
        record = server.record
        assert (record.holder_identity, record.lease_duration_seconds, record.leader_transitions) == ("", 1, 0)
        assert record.acquire_time == record.renew_time is not None
        assert await b.try_acquire_or_renew()  # no waiting: the holder is empty
        assert server.record.leader_transitions == 1
        assert not await a.release()  # not ours any more: nothing written
        assert server.writes()[-1] == ("PUT", "b")
        assert await b.release()
        assert await a.try_acquire_or_renew()
        assert server.record.leader_transitions == 2

    run(main)


def test_release_after_a_conflict_rereads_and_releases_only_if_still_ours() -> None:
    server, clock = LeaseServer(), FakeClock()
    a = elector_for(server, "a", clock)

    async def main() -> None:
        assert await a.try_acquire_or_renew()
        server.put_record(server.record, team="x")
        assert await a.release()
        assert server.record.holder_identity == ""
        assert await a.try_acquire_or_renew()
        server.put_record(LeaseRecord("b", 15, "t", "t", 2))
        assert not await a.release()
        assert server.record.holder_identity == "b"

    run(main)


# -- the campaign: leadership() ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_leadership_waits_for_an_expired_lease_renews_every_retry_period_and_releases(backend: str) -> None:
    server, clock = LeaseServer(), FakeClock()
    foreign_lease(server, "b", transitions=0)
    events = Events()
    sleeper = Sleeper(clock)
    elector = elector_for(server, "a", clock, sleep=sleeper, recorder=events)  # type: ignore[arg-type]
    start = clock.monotonic()
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with elector.leadership() as lease:
            seen["waited"] = clock.monotonic() - start
            seen["acquire_sleeps"] = list(sleeper.calls)
            assert elector.is_leader() and elector.statistics().samples()[0][2] == 1.0
            while len([w for w in server.writes() if w == ("PUT", "a")]) < 6:
                await anyio.sleep(0.001)
            assert not lease.lost.is_set()
        seen["renew_sleeps"] = sleeper.calls[len(seen["acquire_sleeps"]) :]

    run(main, backend)
    assert 15 <= seen["waited"] < 15 + 2.2 * 2  # expiry by observation, retried with jitter
    assert all(2 <= s < 2 * 2.2 for s in seen["acquire_sleeps"])
    assert set(seen["renew_sleeps"]) == {2.0}  # a leader renews every retry period, no jitter
    record = server.record
    assert (record.holder_identity, record.lease_duration_seconds, record.leader_transitions) == ("", 1, 1)
    assert events.recorded == [
        ("lock", "Normal", "LeaderElection", "a became leader"),
        ("lock", "Normal", "LeaderElection", "a stopped leading"),
    ]
    stats = elector.statistics()
    assert not stats.is_leader and stats.samples() == (("leader_election_master_status", {"name": "lock"}, 0.0),)
    assert stats.acquisitions == 1 and stats.losses == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_leader_that_cannot_renew_within_the_deadline_loses_and_its_body_is_cancelled(backend: str) -> None:
    server, clock = LeaseServer(), FakeClock()
    lost_at: list[float] = []
    renewed_at: list[float] = []

    def after_sleep(n: int) -> None:
        if n == 3:  # two renewals done (after sleeps 1 and 2); the API goes away now
            renewed_at.append(clock.monotonic() - 2)
            server.down = True

    sleeper = Sleeper(clock, after_sleep)
    elector = elector_for(server, "a", clock, sleep=sleeper, on_lost=lambda: lost_at.append(clock.monotonic()))
    body: list[str] = []

    async def main() -> None:
        with pytest.raises(LeaderElectionLostError, match="renew deadline"):
            async with elector.leadership() as lease:
                try:
                    await anyio.sleep_forever()
                finally:
                    body.append("cancelled")
        assert lease.lost.is_set() and "renew deadline" in (lease.reason or "")

    run(main, backend)
    assert body == ["cancelled"]
    assert lost_at == [renewed_at[0] + 2 + 10]  # retry period + renew deadline after the last renewal
    # two renewals, then (from the last one) failures at +2 +4 +6 +8 +10 and the loss at +12
    assert sleeper.calls == [2.0] * 8
    stats = elector.statistics()
    assert (stats.attempts, stats.failed_attempts) == (1 + 2 + 5, 5)  # (the writer's circuit opened midway)
    assert stats.losses == 1 and not stats.is_leader and stats.last_error
    assert server.requests[-1] == ("PUT", "")  # then a release was tried (client-go does too)


def test_a_foreign_holder_seen_while_renewing_is_a_loss_at_once() -> None:
    server, clock = LeaseServer(), FakeClock()

    def after_sleep(n: int) -> None:
        if n == 2:
            server.put_record(LeaseRecord("b", 15, "t", "t", 1))

    elector = elector_for(server, "a", clock, sleep=Sleeper(clock, after_sleep))
    started = clock.monotonic()

    async def main() -> None:
        with pytest.raises(LeaderElectionLostError, match="held by b"):
            async with elector.leadership():
                await anyio.sleep_forever()

    run(main)
    assert clock.monotonic() - started == 4.0  # at the next renewal, not at the deadline
    assert server.record.holder_identity == "b"  # no release of what is not ours


def test_cancelled_before_leading_writes_nothing() -> None:
    server, clock = LeaseServer(), FakeClock()
    foreign_lease(server, "b")
    events = Events()

    async def slow_sleep(seconds: float) -> None:
        await anyio.sleep(0.01)

    elector = elector_for(server, "a", clock, sleep=slow_sleep, recorder=events)  # type: ignore[arg-type]

    async def main() -> None:
        with anyio.move_on_after(0.1):
            async with elector.leadership():
                raise AssertionError("never leads")

    run(main)
    assert server.writes() == [] and events.recorded == [] and not elector.is_leader()


def test_one_campaign_at_a_time_and_body_errors_come_out_as_themselves() -> None:
    server, clock = LeaseServer(), FakeClock()
    elector = elector_for(server, "a", clock, sleep=Sleeper(clock))

    async def main() -> None:
        with pytest.raises(KeyError):
            async with elector.leadership():
                with pytest.raises(ControllerStateError):
                    async with elector.leadership():
                        pass
                raise KeyError("boom")
        assert server.record.holder_identity == ""  # released on the way out
        async with elector.leadership():  # and the elector can campaign again
            assert server.record.holder_identity == "a"

    run(main)


# -- real time: a hung API and a blocked event loop ---------------------------------------------

FAST = ElectionOptions(lease_duration=1, renew_deadline=0.6, retry_period=0.2)


def test_a_hung_renewal_is_abandoned_at_the_renew_deadline() -> None:
    server = LeaseServer()
    elector = elector_for(server, "a", SYSTEM_CLOCK, options=FAST)

    async def main() -> float:
        async with elector.leadership():
            server.hang = threading.Event()
            began = time.monotonic()
            with pytest.raises(anyio.get_cancelled_exc_class()):
                await anyio.sleep(10)
        raise AssertionError(f"not lost (after {time.monotonic() - began:.1f} s)")

    async def outer() -> None:
        began = time.monotonic()
        with pytest.raises(LeaderElectionLostError):
            await main()
        elapsed = time.monotonic() - began
        assert server.hang is not None
        server.hang.set()
        assert elapsed < FAST.retry_period + FAST.renew_deadline + FAST.renew_deadline + 1  # deadline, then release cut

    run(outer)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_watchdog_delivers_the_loss_while_the_event_loop_is_blocked(backend: str) -> None:
    server = LeaseServer()
    hook_threads: list[str] = []
    elector = elector_for(
        server,
        "a",
        SYSTEM_CLOCK,
        options=FAST,
        watchdog=True,
        on_lost=lambda: hook_threads.append(threading.current_thread().name),
    )
    seen: dict[str, Any] = {}

    async def main() -> None:
        with pytest.raises(LeaderElectionLostError, match="watchdog"):
            async with elector.leadership() as lease:
                began = time.monotonic()
                # Block the loop itself (a CPU-bound or blocking reconcile would): no renewals can
                # run, and only the watchdog's thread can notice the deadline.
                seen["flag"] = lease.lost.wait_blocking(timeout=10)
                seen["elapsed"] = time.monotonic() - began
                seen["leader"] = elector.is_leader()
                await anyio.sleep(10)  # the first checkpoint: the cancellation is already waiting

    run(main, backend)
    assert seen["flag"] and not seen["leader"]
    assert seen["elapsed"] < FAST.retry_period + FAST.renew_deadline + 1.0
    assert len(hook_threads) == 1 and hook_threads[0] != threading.main_thread().name
