"""errors, result and reconciler contract helpers: terminal detection, Result validation, sync/async
detection of reconcilers, and the context's cancellation signal."""

from __future__ import annotations

import functools
import threading

import pytest

from controllers.errors import (
    ControllerError,
    ControllerSyncTimeoutError,
    InvalidResultError,
    ReconcileCancelledError,
    TerminalError,
    is_terminal,
)
from controllers.reconciler import ReconcileContext, Reconciler, reconcile_callable
from controllers.request import Request
from controllers.result import Result, ResultKind, as_result
from informers.clock import FakeClock
from informers.errors import InformerdError, SyncTimeoutError

REQ = Request("Widget", "uid-1", "ns", "w")


def test_terminal_error_is_terminal_directly_and_through_explicit_causes_only() -> None:
    assert is_terminal(TerminalError("bad spec"))
    try:
        try:
            raise TerminalError("bad spec")
        except TerminalError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_terminal(outer)
    try:
        try:
            raise TerminalError("bad spec")
        except TerminalError:
            raise RuntimeError("raised while handling, not from")  # noqa: B904
    except RuntimeError as outer:
        assert outer.__context__ is not None and not is_terminal(outer)
    assert not is_terminal(ValueError("x"))


def test_controller_errors_live_in_the_informerd_tree() -> None:
    assert issubclass(TerminalError, ControllerError) and issubclass(ControllerError, InformerdError)
    err = ControllerSyncTimeoutError("not synced", {"pods.v1": None})
    assert isinstance(err, SyncTimeoutError) and isinstance(err, ControllerError)
    assert err.causes == {"pods.v1": None}
    assert issubclass(InvalidResultError, TypeError)


def test_result_constructors_and_validation() -> None:
    assert Result.done().kind is ResultKind.DONE and Result.done() == Result()
    assert Result.requeue().kind is ResultKind.REQUEUE
    later = Result.requeue_after(2.5)
    assert later.kind is ResultKind.REQUEUE_AFTER and later.delay == 2.5
    assert str(later) == "requeue_after(2.5s)" and str(Result.done()) == "success"
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            Result.requeue_after(bad)
    with pytest.raises(ValueError):
        Result(ResultKind.DONE, 1.0)


def test_as_result_accepts_none_and_results_and_rejects_the_rest() -> None:
    assert as_result(None) is Result.done()
    assert as_result(Result.requeue()) is Result.requeue()
    with pytest.raises(InvalidResultError, match="got int"):
        as_result(3)

    async def coro() -> None:
        return None

    pending = coro()
    with pytest.raises(InvalidResultError, match="async def"):
        as_result(pending)
    assert pending.cr_frame is None  # closed: no "never awaited" warning


def test_reconcile_callable_detects_sync_and_async_forms() -> None:
    def plain(request, obj, ctx):  # type: ignore[no-untyped-def]
        return None

    async def coroutine(request, obj, ctx):  # type: ignore[no-untyped-def]
        return None

    class SyncReconciler:
        def reconcile(self, request, obj, ctx):  # type: ignore[no-untyped-def]
            return None

    class AsyncReconciler:
        async def reconcile(self, request, obj, ctx):  # type: ignore[no-untyped-def]
            return None

    class AsyncCallable:
        async def __call__(self, request, obj, ctx):  # type: ignore[no-untyped-def]
            return None

    assert reconcile_callable(plain) == (plain, False)
    assert reconcile_callable(coroutine) == (coroutine, True)
    assert reconcile_callable(functools.partial(coroutine))[1] is True
    assert reconcile_callable(SyncReconciler())[1] is False
    assert reconcile_callable(AsyncReconciler())[1] is True
    assert reconcile_callable(AsyncCallable())[1] is True
    assert isinstance(AsyncReconciler(), Reconciler)
    with pytest.raises(TypeError, match="reconcile"):
        reconcile_callable(42)  # type: ignore[arg-type]


def test_context_cancellation_is_visible_to_a_blocked_thread() -> None:
    clock = FakeClock()
    ctx = ReconcileContext(REQ, controller="widgets", attempt=2, deadline=clock.monotonic() + 5, clock=clock)
    assert ctx.remaining() == 5 and not ctx.cancelled
    clock.advance(2)
    assert ctx.remaining() == 3
    ctx.raise_if_cancelled()  # no-op
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(ctx.wait_cancelled(30)))
    thread.start()
    ctx.cancel()
    thread.join(10)
    assert woke == [True] and ctx.cancelled
    with pytest.raises(ReconcileCancelledError):
        ctx.raise_if_cancelled()
    assert ReconcileContext(REQ).remaining() is None
    assert ctx.log is ctx.log  # bound once


def test_wait_cancelled_after_cancel_returns_at_once_and_times_out_otherwise() -> None:
    early = ReconcileContext(REQ)
    early.cancel()
    assert early.wait_cancelled(30) is True
    assert ReconcileContext(REQ).wait_cancelled(0.01) is False
