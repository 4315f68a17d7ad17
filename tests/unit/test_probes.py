"""Health probes with controller-runtime's semantics (``pkg/healthz``), and the HTTP servers that
answer them and ``/metrics``: exact bodies and statuses, bind addresses, and bad input sent over raw
sockets (malformed request lines, huge headers, half-sent requests) that must never crash the
server nor hold up another client. Every server test runs on asyncio and trio."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from controllers.metrics import CONTENT_TYPE, MetricsExporter
from controllers.probes import HealthCheckError, HealthChecks, ping
from controllers.servers import HttpServer, metrics_server, parse_bind_address, probe_server
from informers._bridge import SUPPORTED_BACKENDS

pytestmark = pytest.mark.anyio


@pytest.fixture(params=SUPPORTED_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def failing(reason: str) -> Callable[[], None]:
    def check() -> None:
        raise HealthCheckError(reason)

    return check


def checks(**named: Callable[[], Any]) -> HealthChecks:
    health = HealthChecks("readyz")
    for name, check in named.items():
        health.add(name, check)
    return health


# -- semantics -------------------------------------------------------------------------------------


async def test_all_pass_is_200_ok() -> None:
    assert await checks(b=ping, a=ping).handle("", {}) == (200, "ok")
    assert await checks(b=ping, a=ping).handle("/", {}) == (200, "ok")


async def test_verbose_by_presence_lists_checks_sorted() -> None:
    expected = (200, "[+]a ok\n[+]b ok\nhealthz check passed\n")
    assert await checks(b=ping, a=ping).handle("", {"verbose": [""]}) == expected
    assert await checks(b=ping, a=ping).handle("", {"verbose": ["false"]}) == expected  # presence, not value


async def test_any_failure_is_500_verbose_with_the_reason_withheld() -> None:
    status, body = await checks(zeta=ping, alpha=failing("informers not synced")).handle("", {})
    assert status == 500
    assert body == "[-]alpha failed: reason withheld\n[+]zeta ok\nhealthz check failed\n"


async def test_exclude_is_repeatable_counts_as_healthy_and_warns_about_unknown_names() -> None:
    health = checks(a=failing("x"), b=failing("y"), c=ping)
    assert await health.handle("", {"exclude": ["a", "b"]}) == (200, "ok")
    status, body = await health.handle("", {"exclude": ["a", "nope", "b", "also"], "verbose": [""]})
    assert status == 200
    assert body == (
        "[+]a excluded: ok\n[+]b excluded: ok\n[+]c ok\n"
        'warn: some health checks cannot be excluded: no matches for "also","nope"\n'
        "healthz check passed\n"
    )
    status, body = await health.handle("", {"exclude": ["a"]})
    assert (status, body) == (500, "[+]a excluded: ok\n[-]b failed: reason withheld\n[+]c ok\nhealthz check failed\n")


async def test_single_check_by_name() -> None:
    health = checks(good=ping, bad=failing("cache for v1/pods not synced"))
    assert await health.handle("/good", {}) == (200, "ok")
    assert await health.handle("/bad", {}) == (500, "internal server error: cache for v1/pods not synced\n")
    assert await health.handle("/missing", {}) == (404, "404 page not found\n")
    assert await health.handle("/good/extra", {}) == (404, "404 page not found\n")


async def test_no_checks_means_an_implicit_ping() -> None:
    empty = HealthChecks()
    assert await empty.handle("", {"verbose": [""]}) == (200, "[+]ping ok\nhealthz check passed\n")
    assert await empty.handle("/ping", {}) == (200, "ok")


async def test_any_exception_or_a_hang_is_a_failed_check() -> None:
    async def slow() -> None:
        await anyio.sleep(10)

    def buggy() -> None:
        raise KeyError("oops")

    health = HealthChecks(check_timeout=0.05)
    health.add("slow", slow)
    health.add("buggy", buggy)
    assert await health.handle("/slow", {}) == (500, "internal server error: check did not answer within 0.05 s\n")
    assert await health.handle("/buggy", {}) == (500, "internal server error: 'oops'\n")
    assert (await health.handle("", {}))[0] == 500


def test_check_names_are_unique_and_plain() -> None:
    health = HealthChecks()
    health.add("ping", ping)
    with pytest.raises(ValueError, match="already registered"):
        health.add("ping", ping)
    for bad in ("", "a/b"):
        with pytest.raises(ValueError):
            health.add(bad, ping)
    with pytest.raises(TypeError):
        health.add("x", "not callable")  # type: ignore[arg-type]
    assert health.names == ["ping"]


@pytest.mark.parametrize(
    "address, parsed",
    [
        ("0", None),
        ("", None),
        (":8080", (None, 8080)),
        ("127.0.0.1:8081", ("127.0.0.1", 8081)),
        ("[::1]:9000", ("::1", 9000)),
        (":0", (None, 0)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_bind_addresses_in_controller_runtime_form(address: str, parsed: Any) -> None:
    assert parse_bind_address(address) == parsed


@pytest.mark.parametrize("address", ["8080", "::1:8080", "host:", "host:http", ":70000"])
def test_bad_bind_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        parse_bind_address(address)


def test_a_disabled_address_gives_no_server() -> None:
    assert metrics_server("0", MetricsExporter(process_metrics=False)) is None
    assert probe_server("0", HealthChecks(), HealthChecks()) is None


# -- over the wire ---------------------------------------------------------------------------------


def exchange(port: int, raw: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``raw`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1]


@asynccontextmanager
async def serving(server: HttpServer | None) -> AsyncIterator[int]:
    assert server is not None
    async with anyio.create_task_group() as group:
        port = await group.start(server.serve)
        yield port
        group.cancel_scope.cancel()


def probes(**limits: Any) -> HttpServer:
    healthz = checks(ping=ping)
    readyz = checks(informers=failing("v1/pods not synced"), ping=ping)
    server = probe_server("127.0.0.1:0", healthz, readyz, **limits)
    assert server is not None
    return server


async def get(port: int, raw: bytes) -> bytes:
    return await anyio.to_thread.run_sync(exchange, port, raw)


async def test_probe_endpoints_over_http() -> None:
    async with serving(probes()) as port:
        answer = await get(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(answer) == 200 and body_of(answer) == b"ok"
        assert b"Content-Type: text/plain; charset=utf-8\r\n" in answer and b"Connection: close" in answer
        answer = await get(port, b"GET /readyz HTTP/1.1\r\n\r\n")
        assert status_of(answer) == 500
        assert body_of(answer) == b"[-]informers failed: reason withheld\n[+]ping ok\nhealthz check failed\n"
        answer = await get(port, b"GET /readyz/informers HTTP/1.1\r\n\r\n")
        assert body_of(answer) == b"internal server error: v1/pods not synced\n"
        answer = await get(port, b"GET /readyz?exclude=informers&verbose HTTP/1.1\r\n\r\n")
        assert status_of(answer) == 200 and body_of(answer).startswith(b"[+]informers excluded: ok\n")
        assert status_of(await get(port, b"GET /healthz/ HTTP/1.1\r\n\r\n")) == 200
        assert status_of(await get(port, b"GET /readyz/%70ing HTTP/1.1\r\n\r\n")) == 200  # percent-decoded
        answer = await get(port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert status_of(answer) == 404 and body_of(answer) == b"404 page not found\n"
        assert status_of(await get(port, b"GET /healthzfoo HTTP/1.1\r\n\r\n")) == 404
        answer = await get(port, b"POST /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        assert status_of(answer) == 405 and b"Allow: GET, HEAD\r\n" in answer
        answer = await get(port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert status_of(answer) == 200 and body_of(answer) == b"" and b"Content-Length: 2\r\n" in answer
        answer = await get(port, b"GET http://example/healthz HTTP/1.1\r\n\r\n")  # absolute form
        assert status_of(answer) == 200


async def test_metrics_endpoint_serves_the_exposition() -> None:
    exporter = MetricsExporter()
    exporter.record_plugin_error("p", "load")
    async with serving(metrics_server("127.0.0.1:0", exporter)) as port:
        answer = await get(port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert status_of(answer) == 200
        assert f"Content-Type: {CONTENT_TYPE}\r\n".encode() in answer
        assert b'informerd_plugin_errors_total{kind="load",plugin="p"} 1.0' in body_of(answer)
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 404
        assert status_of(await get(port, b"DELETE /metrics HTTP/1.1\r\n\r\n")) == 405


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"garbage\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"GET /healthz\r\n\r\n", 400),  # HTTP/0.9 form
        (b"GET  /healthz HTTP/1.1\r\n\r\n", 400),
        (b"GET healthz HTTP/1.1\r\n\r\n", 400),
        (b"G(T /healthz HTTP/1.1\r\n\r\n", 400),
        (b"GET /healthz HTTP/9.9\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\n folded: header\r\n\r\n", 400),
        (b"\xff\xfe\x00\x01 /x HTTP/1.1\r\n\r\n", 400),
        (b"\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n", 200),  # leading empty lines are ignored
        (b"GET /healthz?%zz=%%&&exclude HTTP/1.1\r\n\r\n", 200),  # a mangled query is not an error
        (b"GET /healthz HTTP/1.0\n\n", 200),  # bare LF line ends
    ],
)
async def test_malformed_requests_get_a_plain_error_and_the_server_lives_on(raw: bytes, status: int) -> None:
    async with serving(probes()) as port:
        answer = await get(port, raw)
        assert status_of(answer) == status, answer
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 200


async def test_huge_headers_are_refused_with_431() -> None:
    async with serving(probes()) as port:
        raw = b"GET /healthz HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 100_000 + b"\r\n\r\n"
        answer = await get(port, raw)
        assert status_of(answer) == 431
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 200


def _half_request(port: int, hold: float) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow")  # never finished
    return sock


async def test_half_sent_requests_never_block_others_and_time_out_with_408() -> None:
    async with serving(probes(header_timeout=0.5)) as port:
        slow = [await anyio.to_thread.run_sync(_half_request, port, 5.0) for _ in range(10)]
        try:
            started = time.monotonic()
            answer = await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")
            assert status_of(answer) == 200 and time.monotonic() - started < 0.4
            # The slowloris clients are cut off after the header deadline.
            first = await anyio.to_thread.run_sync(lambda: slow[0].recv(4096))
            assert first.startswith(b"HTTP/1.1 408 ")
        finally:
            for sock in slow:
                sock.close()
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 200


async def test_clients_that_vanish_mid_request_leave_the_server_serving() -> None:
    async with serving(probes()) as port:
        for raw in (b"", b"GET /hea", b"GET /healthz HTTP/1.1\r\n"):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(raw)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 200


async def test_connections_beyond_the_limit_are_answered_503() -> None:
    server = probes(header_timeout=2.0)
    server.max_connections = 2
    async with serving(server) as port:
        held = [await anyio.to_thread.run_sync(_half_request, port, 5.0) for _ in range(2)]
        try:
            await anyio.sleep(0.1)
            assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 503
        finally:
            for sock in held:
                sock.close()
        await anyio.sleep(0.1)
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 200


async def test_a_failing_handler_is_a_500_and_the_server_lives_on() -> None:
    async def broken(request: Any) -> Any:
        raise RuntimeError("bug")

    async with serving(HttpServer("127.0.0.1", 0, broken)) as port:
        answer = await get(port, b"GET / HTTP/1.1\r\n\r\n")
        assert status_of(answer) == 500 and body_of(answer) == b"500 internal server error\n"
        assert status_of(await get(port, b"GET / HTTP/1.1\r\n\r\n")) == 500


async def test_cancelling_serve_closes_the_port() -> None:
    server = probes()
    async with serving(server) as port:
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_every_interface_form_binds_and_reports_its_port() -> None:
    server = probe_server(":0", HealthChecks(), HealthChecks())
    async with serving(server) as port:
        assert port == server.port != 0  # type: ignore[union-attr]
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 200


async def test_seeded_random_garbage_never_takes_the_server_down() -> None:
    import random

    rng = random.Random(20261202)
    valid = b"GET /readyz?verbose&exclude=ping HTTP/1.1\r\nHost: probe\r\nAccept: */*\r\n\r\n"
    payloads: list[bytes] = []
    for _ in range(40):
        if rng.random() < 0.5:
            payloads.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))) + b"\r\n\r\n")
        else:  # a valid request with a few bytes flipped, dropped or duplicated
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 6)):
                at = rng.randrange(len(data))
                choice = rng.random()
                if choice < 0.4:
                    data[at] = rng.getrandbits(8)
                elif choice < 0.7:
                    del data[at]
                else:
                    data.insert(at, data[at])
            payloads.append(bytes(data) + b"\r\n\r\n")
    async with serving(probes(header_timeout=0.3)) as port:
        for raw in payloads:
            answer = await get(port, raw)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 "), raw
            if answer:
                assert status_of(answer) in (200, 400, 404, 405, 408, 431, 500, 505), (raw, answer[:80])
        assert status_of(await get(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 200
