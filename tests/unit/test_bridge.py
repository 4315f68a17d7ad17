"""The thread <-> loop bridge on both supported anyio backends: wake-ups from threads are delivered
without blocking the loop and never lost, ``Flag`` serves tasks and threads, ``to_thread`` runs
blocking code off the loop, and an unsupported context fails with a clear error."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from informers._bridge import SUPPORTED_BACKENDS, Flag, Loop, Waiter, to_thread

pytestmark = pytest.mark.anyio


@pytest.fixture(params=SUPPORTED_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_loop_names_its_backend(anyio_backend: str):
    assert Loop.current().backend == anyio_backend


async def test_call_soon_from_a_thread_runs_on_the_loop_thread():
    loop = Loop.current()
    loop_thread = threading.get_ident()
    ran_on: list[int] = []
    done = anyio.Event()

    def from_thread() -> None:
        assert not loop.in_loop_thread()
        assert loop.call_soon(lambda: (ran_on.append(threading.get_ident()), done.set()))

    threading.Thread(target=from_thread).start()
    with anyio.fail_after(5):
        await done.wait()
    assert ran_on == [loop_thread]


async def test_waiter_woken_from_a_thread_and_from_the_loop():
    waiter = Waiter()
    threading.Thread(target=waiter.wake).start()
    with anyio.fail_after(5):
        await waiter.wait()
    assert waiter.woken

    same_thread = Waiter()
    assert same_thread.wake()
    with anyio.fail_after(1):
        await same_thread.wait()


async def test_flag_wakes_every_waiting_task_and_thread():
    flag = Flag()
    results: list[str] = []
    thread_result: list[bool] = []
    blocked = threading.Thread(target=lambda: thread_result.append(flag.wait_blocking(5)))
    blocked.start()

    async def task(name: str) -> None:
        assert await flag.wait(5)
        results.append(name)

    async with anyio.create_task_group() as group:
        for name in ("a", "b", "c"):
            group.start_soon(task, name)
        await anyio.sleep(0.05)
        assert results == []
        threading.Thread(target=flag.set).start()
    blocked.join(5)
    assert sorted(results) == ["a", "b", "c"]
    assert thread_result == [True]


async def test_flag_wait_times_out_and_leaves_no_waiter_behind():
    flag = Flag()
    started = time.monotonic()
    assert await flag.wait(0.05) is False
    assert time.monotonic() - started < 2
    assert flag._tasks == []
    assert flag.wait_blocking(0.01) is False
    assert flag._threads == []
    flag.set()
    assert await flag.wait(0) is True
    flag.clear()
    assert not flag.is_set()


async def test_flag_wait_is_cancellable():
    flag = Flag()
    with anyio.move_on_after(0.05) as scope:
        await flag.wait()
    assert scope.cancelled_caught
    assert flag._tasks == []


async def test_to_thread_runs_off_the_loop_and_returns_the_result():
    loop_thread = threading.get_ident()
    assert await to_thread(lambda x: (x * 2, threading.get_ident() != loop_thread), 21) == (42, True)


def test_loop_outside_an_event_loop_is_a_clear_error():
    with pytest.raises(anyio.NoEventLoopError):
        Loop.current()


def test_call_soon_after_the_loop_finished_returns_false():
    loops: list[Loop] = []

    async def main() -> None:
        loops.append(Loop.current())

    for backend in SUPPORTED_BACKENDS:
        anyio.run(main, backend=backend)
    assert [loop.call_soon(lambda: None) for loop in loops] == [False, False]


async def test_run_sync_from_a_thread_can_start_tasks_on_the_loop():
    loop = Loop.current()
    ran = anyio.Event()

    async def task() -> None:
        ran.set()

    async with anyio.create_task_group() as group:
        await to_thread(loop.run_sync, group.start_soon, task)
        with anyio.fail_after(5):
            await ran.wait()
    assert loop.run_sync(lambda: 7) == 7  # on the loop's own thread: at once
