"""A watch line may not grow without bound: past ``max_line_bytes`` the stream raises at once,
by the line's size and never its text, instead of buffering a line that never ends."""

from __future__ import annotations

from typing import Any

import pytest

from informers._watchstream import MAX_LINE_BYTES, WatchStream
from informers.errors import MalformedResponseError


class _Answer:
    """Enough of a urllib3 response for ``WatchStream``: ``read1`` hands out ``chunks`` in turn."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.reads = 0
        self.closed = False
        self.released = False

    def read1(self, amount: int) -> bytes:
        self.reads += 1
        return self.chunks.pop(0) if self.chunks else b""

    def shutdown(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True


def _stream(answer: _Answer, limit: int) -> WatchStream:
    raw: Any = answer
    return WatchStream(raw, path="/api/v1/secrets", idle_timeout=5, max_line_bytes=limit)


def test_the_default_limit_is_client_gos() -> None:
    assert MAX_LINE_BYTES == 16 * 1024 * 1024


def test_lines_up_to_the_limit_pass_whole() -> None:
    answer = _Answer([b"0123", b"456789\n", b"ab\n"])
    assert list(_stream(answer, 10)) == [b"0123456789", b"ab"]


def test_a_line_that_never_ends_raises_once_past_the_limit_without_reading_on() -> None:
    answer = _Answer([b"s3cr3t" * 2] * 100)
    stream = _stream(answer, 20)
    with pytest.raises(MalformedResponseError, match="more than 20 bytes") as caught:
        list(stream)
    assert answer.reads == 2  # 24 bytes: stopped there, not at the end of the answer
    assert "s3cr3t" not in str(caught.value)
    assert answer.closed and stream.closed  # never handed back to the pool half-read


@pytest.mark.parametrize(
    "chunks",
    [[b"ok\n" + b"x" * 30 + b"\nok\n"], [b"x" * 15, b"x" * 15 + b"\n"], [b"ok\nxxxxx", b"x" * 30 + b"\n"]],
    ids=["inside-one-read", "ending-in-a-later-read", "begun-after-a-line"],
)
def test_a_long_line_ended_by_a_newline_is_refused_too(chunks: list[bytes]) -> None:
    stream = _stream(_Answer(chunks), 20)
    got: list[bytes] = []
    with pytest.raises(MalformedResponseError):
        for line in stream:
            got.append(line)
    assert all(len(line) <= 20 for line in got)
