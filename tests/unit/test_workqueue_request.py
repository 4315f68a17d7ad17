"""Request, the reconcile key: identity is (kind, uid); namespace and name are for logs."""

from __future__ import annotations

import dataclasses

import pytest

from controllers.request import Request
from controllers.workqueue import WorkQueue


def test_equality_and_hash_ignore_namespace_and_name() -> None:
    a = Request("Pod", "uid-1", "default", "web")
    renamed = Request("Pod", "uid-1", "other", "web-2")
    assert a == renamed and hash(a) == hash(renamed)
    assert a != Request("Pod", "uid-2", "default", "web")  # re-created under the same name
    assert a != Request("Service", "uid-1", "default", "web")


def test_requests_for_one_object_collapse_in_the_queue() -> None:
    q: WorkQueue[Request] = WorkQueue()
    q.add(Request("Pod", "uid-1", "default", "web"))
    q.add(Request("Pod", "uid-1"))  # e.g. from an owner reference, without a name
    q.add(Request("Pod", "uid-2", "default", "web"))
    assert len(q) == 2


def test_request_is_immutable_and_readable() -> None:
    r = Request("Pod", "uid-1", "default", "web")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.uid = "x"  # type: ignore[misc]
    assert str(r) == "Pod default/web (uid=uid-1)"
    assert str(Request("Node", "uid-9", name="n1")) == "Node n1 (uid=uid-9)"


@pytest.mark.parametrize("kind, uid", [("", "uid-1"), ("Pod", "")])
def test_kind_and_uid_are_required(kind: str, uid: str) -> None:
    with pytest.raises(ValueError):
        Request(kind, uid)
