"""Error messages never quote object contents: a watch line that is not valid JSON (a truncated
chunk of a Secret, say) is reported by its size and the decoder's position, not by its text, so
neither the logs nor ``/healthz?verbose`` (which shows the last error) can carry Secret data."""

from __future__ import annotations

import base64
import threading
from typing import Any

from informers._backoff import Backoff
from informers._reflector import Reflector
from informers._watcher import Watcher
from informers.errors import MalformedResponseError
from informers.resources import Resource
from informers.testing.fake import FakeCluster

from .conftest import wait_until

SECRETS = Resource("", "v1", "secrets", "Secret", namespaced=True)
VALUE = base64.b64encode(b"s3cr3t-marker").decode()
TRUNCATED = ('{"type":"ADDED","object":{"kind":"Secret","metadata":{"name":"s"},"data":{"password":"' + VALUE).encode()


class _OneBadLine:
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Any:
        yield TRUNCATED

    def close(self) -> None:
        self.closed = True


class _Cluster:
    """A FakeCluster whose first watch sends one truncated line."""

    def __init__(self) -> None:
        self._cluster = FakeCluster()
        self.sent = False

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        if not self.sent:
            self.sent = True
            return _OneBadLine()
        return self._cluster.watch(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)


def test_an_undecodable_watch_line_is_reported_without_its_text() -> None:
    cluster = _Cluster()
    errors: list[BaseException] = []
    reflector = Reflector(cluster, SECRETS, lambda events: None, watcher=Watcher(), backoff=Backoff(0.01, 0.05))  # type: ignore[arg-type]
    original = reflector._watch  # type: ignore[attr-defined]

    def watch(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except MalformedResponseError as exc:
            errors.append(exc)
            raise

    reflector._watch = watch  # type: ignore[attr-defined,method-assign]
    thread = threading.Thread(target=reflector.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: bool(errors))
    finally:
        reflector.stop()
        thread.join(5)
    message = str(errors[0])
    assert "undecodable watch line" in message and f"{len(TRUNCATED)} bytes" in message
    assert VALUE not in message and "password" not in message and "Secret" not in message
