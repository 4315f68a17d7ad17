"""Circuit breaker state machine with a fake clock: closed -> open -> half-open -> closed/open."""

from __future__ import annotations

import pytest

from controllers.circuit import (
    CircuitBreaker,
    CircuitOptions,
    CircuitShedError,
    CircuitState,
    is_retryable_failure,
)
from informers.clock import FakeClock
from informers.errors import (
    ConflictError,
    InformerdError,
    InvalidError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
    TransportError,
)

GROUP = "apps/v1"


def _breaker(clock: FakeClock, **options: object) -> CircuitBreaker:
    defaults: dict[str, object] = {
        "window": 30.0,
        "min_requests": 4,
        "failure_ratio": 0.5,
        "cooldown": 5.0,
        "max_cooldown": 20.0,
        "half_open_probes": 1,
    }
    defaults.update(options)
    return CircuitBreaker(CircuitOptions(**defaults), clock=clock)  # type: ignore[arg-type]


def _fail(breaker: CircuitBreaker, group: str = GROUP, exc: Exception | None = None) -> None:
    with pytest.raises(type(exc) if exc else ServiceUnavailableError):
        with breaker.acquire(group):
            raise exc or ServiceUnavailableError("etcd is sick")


def _succeed(breaker: CircuitBreaker, group: str = GROUP) -> None:
    with breaker.acquire(group):
        pass


def test_stays_closed_below_min_requests_even_if_all_fail() -> None:
    breaker = _breaker(FakeClock())
    for _ in range(3):
        _fail(breaker)
    assert breaker.state(GROUP) is CircuitState.CLOSED
    stats = breaker.statistics().groups[GROUP]
    assert (stats.window_requests, stats.window_failures, stats.opened) == (3, 3, 0)


def test_opens_at_the_failure_ratio_and_sheds_with_a_retryable_shed_error() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    _succeed(breaker)
    _succeed(breaker)
    _fail(breaker)
    assert breaker.state(GROUP) is CircuitState.CLOSED  # 1 of 3: below min_requests
    _fail(breaker)  # 2 of 4 = 50 %
    assert breaker.state(GROUP) is CircuitState.OPEN
    clock.advance(2.0)
    with pytest.raises(CircuitShedError) as shed:
        breaker.acquire(GROUP)
    assert isinstance(shed.value, InformerdError) and shed.value.retryable
    assert shed.value.group == GROUP and shed.value.retry_after == pytest.approx(3.0)
    assert GROUP in str(shed.value)
    stats = breaker.statistics()
    assert stats.groups[GROUP].opened == 1 and stats.groups[GROUP].shed == 1 and stats.shed == 1
    assert (stats.groups[GROUP].failures, stats.groups[GROUP].successes) == (2, 2)


def test_below_the_ratio_stays_closed() -> None:
    breaker = _breaker(FakeClock(), min_requests=4)
    for _ in range(3):
        _succeed(breaker)
    _fail(breaker)  # 1 of 4 = 25 %
    _succeed(breaker)
    _fail(breaker)  # 2 of 6 = 33 %
    assert breaker.state(GROUP) is CircuitState.CLOSED


@pytest.mark.parametrize("exc", [NotFoundError("gone"), ConflictError("stale"), InvalidError("bad"), ValueError("bug")])
def test_caller_errors_count_as_successes_for_health(exc: Exception) -> None:
    breaker = _breaker(FakeClock(), min_requests=2)
    for _ in range(10):
        _fail(breaker, exc=exc)
    stats = breaker.statistics().groups[GROUP]
    assert stats.state is CircuitState.CLOSED
    assert (stats.successes, stats.failures) == (10, 0)


@pytest.mark.parametrize(
    "exc", [TooManyRequestsError("slow down"), TransportError("reset"), ServiceUnavailableError("down")]
)
def test_server_and_network_failures_count(exc: Exception) -> None:
    assert is_retryable_failure(exc)
    breaker = _breaker(FakeClock(), min_requests=2)
    _fail(breaker, exc=exc)
    _fail(breaker, exc=exc)
    assert breaker.state(GROUP) is CircuitState.OPEN


def test_a_shed_error_is_not_itself_a_failure() -> None:
    assert not is_retryable_failure(CircuitShedError(GROUP, CircuitState.OPEN, 1.0))


def test_old_failures_slide_out_of_the_window() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, window=30.0, min_requests=4)
    for _ in range(3):
        _fail(breaker)
    clock.advance(31.0)
    _fail(breaker)  # the first three are older than the window
    _succeed(breaker)
    stats = breaker.statistics().groups[GROUP]
    assert stats.state is CircuitState.CLOSED and stats.window_requests == 2


def test_half_open_after_cooldown_admits_one_probe_and_success_closes() -> None:
    clock = FakeClock()
    transitions: list[tuple[str, CircuitState, CircuitState]] = []
    breaker = CircuitBreaker(
        CircuitOptions(min_requests=2, cooldown=5.0),
        clock=clock,
        on_transition=lambda g, old, new: transitions.append((g, old, new)),
    )
    _fail(breaker)
    _fail(breaker)
    clock.advance(4.9)
    assert breaker.state(GROUP) is CircuitState.OPEN
    clock.advance(0.1)
    assert breaker.state(GROUP) is CircuitState.HALF_OPEN
    probe = breaker.acquire(GROUP)
    assert probe.probe
    with pytest.raises(CircuitShedError) as busy:  # the one probe slot is taken
        breaker.acquire(GROUP)
    assert busy.value.state is CircuitState.HALF_OPEN and busy.value.retry_after == 0.0
    probe.success()
    assert breaker.state(GROUP) is CircuitState.CLOSED
    assert [(old, new) for _, old, new in transitions] == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    stats = breaker.statistics().groups[GROUP]
    assert stats.window_requests == 0 and stats.opened == 1 and stats.shed == 1


def test_failed_probe_reopens_with_a_doubled_capped_cooldown_and_success_resets_it() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, min_requests=2, cooldown=5.0, max_cooldown=12.0)
    _fail(breaker)
    _fail(breaker)
    cooldowns = []
    for _ in range(3):
        clock.advance(breaker.statistics().groups[GROUP].cooldown)
        _fail(breaker)  # the probe fails
        assert breaker.state(GROUP) is CircuitState.OPEN
        cooldowns.append(breaker.statistics().groups[GROUP].cooldown)
    assert cooldowns == [10.0, 12.0, 12.0]
    clock.advance(11.9)
    with pytest.raises(CircuitShedError):
        breaker.acquire(GROUP)
    clock.advance(0.1)
    _succeed(breaker)
    stats = breaker.statistics().groups[GROUP]
    assert stats.state is CircuitState.CLOSED and stats.cooldown == 5.0 and stats.opened == 4


def test_several_probes_must_all_succeed_before_closing() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, min_requests=2, half_open_probes=2)
    _fail(breaker)
    _fail(breaker)
    clock.advance(5.0)
    first, second = breaker.acquire(GROUP), breaker.acquire(GROUP)
    with pytest.raises(CircuitShedError):
        breaker.acquire(GROUP)
    first.success()
    assert breaker.state(GROUP) is CircuitState.HALF_OPEN
    second.success()
    assert breaker.state(GROUP) is CircuitState.CLOSED


def test_released_probe_frees_its_slot_without_deciding() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, min_requests=2)
    _fail(breaker)
    _fail(breaker)
    clock.advance(5.0)
    breaker.acquire(GROUP).release()
    assert breaker.state(GROUP) is CircuitState.HALF_OPEN
    _succeed(breaker)
    assert breaker.state(GROUP) is CircuitState.CLOSED


def test_cancellation_releases_without_an_outcome() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, min_requests=2)
    _fail(breaker)
    _fail(breaker)
    clock.advance(5.0)
    with pytest.raises(KeyboardInterrupt):
        with breaker.acquire(GROUP):
            raise KeyboardInterrupt
    assert breaker.state(GROUP) is CircuitState.HALF_OPEN
    assert breaker.statistics().groups[GROUP].probes_in_flight == 0


def test_outcomes_of_calls_admitted_under_an_earlier_state_are_ignored() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, min_requests=2)
    slow = breaker.acquire(GROUP)  # admitted while closed
    _fail(breaker)
    _fail(breaker)
    clock.advance(5.0)
    probe = breaker.acquire(GROUP)
    slow.failure()  # a late failure from before must not decide the probe's fate
    assert breaker.state(GROUP) is CircuitState.HALF_OPEN
    probe.success()
    assert breaker.state(GROUP) is CircuitState.CLOSED
    assert breaker.statistics().groups[GROUP].failures == 2


def test_groups_are_independent_and_reset_forgets() -> None:
    breaker = _breaker(FakeClock(), min_requests=2)
    _fail(breaker, "batch/v1")
    _fail(breaker, "batch/v1")
    assert breaker.state("batch/v1") is CircuitState.OPEN
    _succeed(breaker, "v1")
    assert breaker.state("v1") is CircuitState.CLOSED
    assert set(breaker.statistics().groups) == {"batch/v1", "v1"}
    breaker.reset("batch/v1")
    assert breaker.state("batch/v1") is CircuitState.CLOSED
    breaker.reset()
    assert breaker.statistics().groups == {}


def test_call_runs_records_and_reraises() -> None:
    breaker = _breaker(FakeClock(), min_requests=3)
    assert breaker.call(GROUP, lambda: 42) == 42

    def boom() -> int:
        raise TransportError("reset by peer")

    with pytest.raises(TransportError):
        breaker.call(GROUP, boom)
    assert breaker.state(GROUP) is CircuitState.CLOSED  # 1 of 2: below min_requests
    with pytest.raises(TransportError):
        breaker.call(GROUP, boom)
    assert breaker.state(GROUP) is CircuitState.OPEN  # 2 of 3
    with pytest.raises(CircuitShedError):
        breaker.call(GROUP, lambda: 1)


def test_a_raising_transition_callback_or_classifier_does_not_break_the_breaker() -> None:
    def bad_callback(*_: object) -> None:
        raise RuntimeError("metrics bug")

    def bad_classifier(_: BaseException) -> bool:
        raise RuntimeError("classifier bug")

    breaker = CircuitBreaker(CircuitOptions(min_requests=1), clock=FakeClock(), on_transition=bad_callback)
    _fail(breaker)
    assert breaker.state(GROUP) is CircuitState.OPEN
    tolerant = CircuitBreaker(CircuitOptions(min_requests=1), clock=FakeClock(), classifier=bad_classifier)
    _fail(tolerant)
    assert tolerant.state(GROUP) is CircuitState.CLOSED  # unclassifiable counts as not a failure


def test_permit_finishes_once() -> None:
    breaker = _breaker(FakeClock(), min_requests=1)
    permit = breaker.acquire(GROUP)
    permit.success()
    permit.failure()  # ignored: already finished
    assert breaker.statistics().groups[GROUP].failures == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"window": 0},
        {"min_requests": 0},
        {"failure_ratio": 0},
        {"failure_ratio": 1.5},
        {"cooldown": 0},
        {"cooldown": 10, "max_cooldown": 5},
        {"half_open_probes": 0},
    ],
)
def test_options_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitOptions(**bad)  # type: ignore[arg-type]


def test_the_shed_error_is_an_informerd_error_of_its_own() -> None:
    # The breaker's only error: it derives from InformerdError directly, not from a separate
    # "circuit open" class that nothing raised.
    assert CircuitShedError.__bases__ == (InformerdError,)
    assert CircuitShedError.retryable
