"""The fake kit itself (``informers.testing.fake.FakeCluster``): CRUD with the apiserver's rules
(server-owned fields, generation, conflicts, finalizers, the status subresource), patches and
apply, selectors and pagination, resourceVersion semantics and 410 after ``compact``, watches
(replay, selector moves, streaming list, bookmarks), the fault hooks, the write recording, and the
layers above the client (Discovery, ApiWriter, EventRecorder) running over it unchanged."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import orjson
import pytest

from controllers.recorder import EventRecorder
from controllers.writer import ApiWriter, PatchType, WriterOptions
from informers._watcher import INITIAL_EVENTS_END_ANNOTATION
from informers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    ExpiredError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    ServerTimeoutError,
    ServiceUnavailableError,
    StreamStalledError,
    TooManyRequestsError,
    TransportError,
)
from informers.resources import Discovery, Resource
from informers.testing.fake import FakeCluster

from .conftest import wait_until

WIDGETS = Resource("example.com", "v1", "widgets", "Widget", namespaced=True)
CM_PATH = "/api/v1/namespaces/ns/configmaps"


def cm(name: str, **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", **fields.pop("meta", {})}, **fields}


@pytest.fixture
def cluster() -> FakeCluster:
    fake = FakeCluster()
    fake.register(WIDGETS, status_subresource=True)
    return fake


def events_of(stream: Any, count: int) -> list[dict[str, Any]]:
    return [orjson.loads(next(stream)) for _ in range(count)]


# -- CRUD and the apiserver's rules ------------------------------------------------------------


def test_create_fills_server_owned_fields_and_versions_come_from_one_counter(cluster: FakeCluster) -> None:
    first = cluster.create("configmaps", cm("a", data={"k": "v"}))
    second = cluster.create(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"size": 1}})
    meta = first["metadata"]
    assert first["kind"] == "ConfigMap" and first["apiVersion"] == "v1"
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert int(second["metadata"]["resourceVersion"]) == int(meta["resourceVersion"]) + 1
    assert cluster.resource_version == second["metadata"]["resourceVersion"]
    assert cluster.get("configmaps", "a", namespace="ns") == first
    with pytest.raises(AlreadyExistsError) as caught:
        cluster.create("configmaps", cm("a"))
    assert caught.value.status == 409 and caught.value.reason == "AlreadyExists"
    with pytest.raises(BadRequestError, match="resourceVersion should not be set"):
        cluster.create("configmaps", cm("b", meta={"resourceVersion": "3"}))


def test_generate_name_and_missing_names(cluster: FakeCluster) -> None:
    made = cluster.create("configmaps", {"metadata": {"generateName": "job-", "namespace": "ns"}})
    assert made["metadata"]["name"].startswith("job-") and len(made["metadata"]["name"]) == 9
    with pytest.raises(InvalidError, match="name or generateName is required"):
        cluster.create("configmaps", {"metadata": {"namespace": "ns"}})


def test_update_is_conditional_on_resource_version_and_uid(cluster: FakeCluster) -> None:
    live = cluster.create("configmaps", cm("a", data={"k": "1"}))
    stale = {**live, "data": {"k": "stale"}}
    fresh = cluster.update("configmaps", {**live, "data": {"k": "2"}})
    assert fresh["data"] == {"k": "2"} and fresh["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"]
    with pytest.raises(ConflictError) as caught:
        cluster.update("configmaps", stale)
    assert not isinstance(caught.value, AlreadyExistsError) and "has been modified" in str(caught.value)
    other_uid = {**fresh, "metadata": {**fresh["metadata"], "uid": "someone-else"}}
    with pytest.raises(ConflictError, match="Precondition failed: UID"):
        cluster.update("configmaps", other_uid)
    with pytest.raises(NotFoundError):
        cluster.update("configmaps", cm("missing", meta={"resourceVersion": "1"}))
    assert cluster.get("configmaps", "a", namespace="ns") == fresh


def test_generation_moves_with_the_spec_only_and_a_no_op_write_makes_no_version(cluster: FakeCluster) -> None:
    w = cluster.create(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"size": 1}})
    labelled = cluster.patch(WIDGETS, "w", {"metadata": {"labels": {"a": "b"}}}, namespace="ns")
    assert labelled["metadata"]["generation"] == 1
    resized = cluster.patch(WIDGETS, "w", {"spec": {"size": 2}}, namespace="ns")
    assert resized["metadata"]["generation"] == 2
    again = cluster.update(WIDGETS, resized)
    assert again == resized  # nothing changed: same resourceVersion, no event
    assert w["metadata"]["uid"] == again["metadata"]["uid"]


def test_status_subresource_rules(cluster: FakeCluster) -> None:
    w = cluster.create(
        WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"size": 1}, "status": {"ready": True}}
    )
    assert "status" not in w  # dropped on create, as the apiserver does with a status subresource
    with_status = cluster.update_status(WIDGETS, {**w, "status": {"ready": True}, "spec": {"size": 99}})
    assert with_status["status"] == {"ready": True} and with_status["spec"] == {"size": 1}
    assert with_status["metadata"]["generation"] == 1
    main = cluster.update(WIDGETS, {**with_status, "status": {"ready": False}, "spec": {"size": 3}})
    assert main["status"] == {"ready": True} and main["spec"] == {"size": 3}
    patched = cluster.patch(WIDGETS, "w", {"status": {"ready": False}}, namespace="ns", subresource="status")
    assert patched["status"] == {"ready": False}
    # Without a status subresource the status is part of the object and /status does not exist.
    plain = cluster.create("configmaps", cm("a", status={"x": 1}))
    assert plain["status"] == {"x": 1}
    with pytest.raises(NotFoundError):
        cluster.update_status("configmaps", plain)


def test_finalizers_hold_a_deleted_object_until_the_last_one_is_removed(cluster: FakeCluster) -> None:
    cluster.create("configmaps", cm("a", meta={"finalizers": ["example.com/cleanup"]}))
    stream = cluster.watch(CM_PATH, {"resourceVersion": cluster.resource_version}, idle_timeout=5)
    deleting = cluster.delete("configmaps", "a", namespace="ns")
    assert deleting["metadata"]["deletionTimestamp"]
    assert cluster.get("configmaps", "a", namespace="ns") == deleting
    assert cluster.delete("configmaps", "a", namespace="ns") == deleting  # deleting again changes nothing
    with pytest.raises(InvalidError, match="no new finalizers"):
        cluster.patch("configmaps", "a", {"metadata": {"finalizers": ["example.com/cleanup", "x/y"]}}, namespace="ns")
    cluster.patch("configmaps", "a", {"metadata": {"finalizers": None}}, namespace="ns")
    with pytest.raises(NotFoundError):
        cluster.get("configmaps", "a", namespace="ns")
    assert [e["type"] for e in events_of(stream, 2)] == ["MODIFIED", "DELETED"]
    stream.close()


def test_delete_preconditions_and_missing_objects(cluster: FakeCluster) -> None:
    live = cluster.create("configmaps", cm("a"))
    with pytest.raises(ConflictError, match="Precondition failed: UID"):
        cluster.delete("configmaps", "a", namespace="ns", uid="not-it")
    with pytest.raises(ConflictError, match="Precondition failed: ResourceVersion"):
        cluster.delete("configmaps", "a", namespace="ns", resource_version="1000")
    final = cluster.delete("configmaps", "a", namespace="ns", uid=live["metadata"]["uid"])
    assert final["metadata"]["uid"] == live["metadata"]["uid"]
    with pytest.raises(NotFoundError) as caught:
        cluster.delete("configmaps", "a", namespace="ns")
    assert 'configmaps "a" not found' in str(caught.value)


# -- patches and apply -------------------------------------------------------------------------


def test_merge_json_and_strategic_patches(cluster: FakeCluster) -> None:
    live = cluster.create("configmaps", cm("a", data={"keep": "1", "drop": "2"}))
    merged = cluster.patch("configmaps", "a", {"data": {"drop": None, "new": "3"}}, namespace="ns")
    assert merged["data"] == {"keep": "1", "new": "3"}
    strategic = cluster.patch("configmaps", "a", {"data": {"s": "4"}}, namespace="ns", patch_type="strategic")
    assert strategic["data"] == {"keep": "1", "new": "3", "s": "4"}
    ops = [
        {"op": "test", "path": "/data/keep", "value": "1"},
        {"op": "replace", "path": "/data/keep", "value": "9"},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        {"op": "remove", "path": "/data/s"},
    ]
    patched = cluster.patch("configmaps", "a", ops, namespace="ns", patch_type="json")
    assert patched["data"] == {"keep": "9", "new": "3"} and patched["metadata"]["labels"] == {"x": "y"}
    with pytest.raises(InvalidError, match="test failed"):
        cluster.patch(
            "configmaps",
            "a",
            [{"op": "test", "path": "/data/keep", "value": "1"}, {"op": "remove", "path": "/data/new"}],
            namespace="ns",
            patch_type="json",
        )
    assert cluster.get("configmaps", "a", namespace="ns") == patched  # all or nothing
    with pytest.raises(ConflictError):
        cluster.patch(
            "configmaps",
            "a",
            {"metadata": {"resourceVersion": live["metadata"]["resourceVersion"]}, "data": {"k": "v"}},
            namespace="ns",
        )
    with pytest.raises(NotFoundError):
        cluster.patch("configmaps", "missing", {"data": {}}, namespace="ns")


def test_apply_creates_then_merges_and_needs_a_field_manager(cluster: FakeCluster) -> None:
    intent = {"metadata": {"name": "a", "namespace": "ns"}, "data": {"k": "1"}}
    created = cluster.apply("configmaps", intent)
    assert created["data"] == {"k": "1"}
    assert cluster.apply("configmaps", intent) == created  # the same intent again: no new version
    merged = cluster.apply("configmaps", {"metadata": {"name": "a"}, "data": {"j": "2"}}, namespace="ns")
    assert merged["data"] == {"k": "1", "j": "2"}
    with pytest.raises(BadRequestError, match="fieldManager is required"):
        cluster.request("PATCH", f"{CM_PATH}/a", body=intent, content_type="application/apply-patch+yaml")
    answer = cluster.request(
        "PATCH",
        f"{CM_PATH}/b",
        body={**intent, "metadata": {"name": "b"}},
        content_type="application/apply-patch+yaml",
        query={"fieldManager": "me"},
    )
    assert answer.status == 201


# -- reads: selectors, pagination, versions ----------------------------------------------------


def test_label_and_field_selectors(cluster: FakeCluster) -> None:
    cluster.create("configmaps", cm("a", meta={"labels": {"app": "web", "tier": "front"}}))
    cluster.create("configmaps", cm("b", meta={"labels": {"app": "db"}}))
    cluster.create("configmaps", {"metadata": {"name": "c", "namespace": "other", "labels": {"app": "web"}}})

    def names(**selectors: str) -> list[str]:
        return [o["metadata"]["name"] for o in cluster.list("configmaps", **selectors)]  # type: ignore[arg-type]

    assert names(label_selector="app=web") == ["a", "c"]  # sorted by namespace, then name
    assert names(label_selector="app==web,tier") == ["a"]
    assert names(label_selector="app!=web") == ["b"]
    assert names(label_selector="!tier,app in (web, db)") == ["b", "c"]
    assert names(label_selector="app notin (web)") == ["b"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.namespace!=ns") == ["c"]
    assert [o["metadata"]["name"] for o in cluster.list("configmaps", namespace="ns")] == ["a", "b"]
    with pytest.raises(BadRequestError, match="field label not supported"):
        cluster.list("configmaps", field_selector="spec.nodeName=n1")


def test_pagination_reads_one_snapshot_and_expires_after_compaction(cluster: FakeCluster) -> None:
    for i in range(5):
        cluster.create("configmaps", cm(f"c{i}"))
    page = cluster.get_json(CM_PATH, {"limit": 2})
    assert [i["metadata"]["name"] for i in page["items"]] == ["c0", "c1"]
    assert "kind" not in page["items"][0] and page["kind"] == "ConfigMapList"  # as the apiserver lists
    assert page["metadata"]["remainingItemCount"] == 3
    cluster.delete("configmaps", "c3", namespace="ns")
    cluster.create("configmaps", cm("c9"))
    rest = cluster.get_json(CM_PATH, {"limit": 10, "continue": page["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c2", "c3", "c4"]  # the first page's snapshot
    assert rest["metadata"]["resourceVersion"] == page["metadata"]["resourceVersion"]
    assert "continue" not in rest["metadata"]
    cluster.compact()
    with pytest.raises(ExpiredError):
        cluster.get_json(CM_PATH, {"limit": 10, "continue": page["metadata"]["continue"]})


def test_resource_version_semantics_of_lists(cluster: FakeCluster) -> None:
    cluster.create("configmaps", cm("a"))
    old = cluster.resource_version
    cluster.create("configmaps", cm("b"))
    now = cluster.resource_version
    exact = cluster.get_json(CM_PATH, {"resourceVersion": old, "resourceVersionMatch": "Exact"})
    assert [i["metadata"]["name"] for i in exact["items"]] == ["a"] and exact["metadata"]["resourceVersion"] == old
    for query in ({"resourceVersion": "0"}, {}, {"resourceVersion": old, "resourceVersionMatch": "NotOlderThan"}):
        assert cluster.get_json(CM_PATH, query)["metadata"]["resourceVersion"] == now
    with pytest.raises(ServerTimeoutError) as caught:
        cluster.get_json(CM_PATH, {"resourceVersion": str(int(now) + 5)})
    assert caught.value.details["causes"][0]["reason"] == "ResourceVersionTooLarge"
    cluster.compact(now)
    with pytest.raises(ExpiredError) as gone:
        cluster.get_json(CM_PATH, {"resourceVersion": old, "resourceVersionMatch": "Exact"})
    assert gone.value.status == 410


# -- watches -----------------------------------------------------------------------------------


def test_watch_replays_after_an_old_version_and_follows_selector_moves(cluster: FakeCluster) -> None:
    cluster.create("configmaps", cm("before"))
    start = cluster.resource_version
    cluster.create("configmaps", cm("a", meta={"labels": {"app": "web"}}))
    cluster.create("configmaps", cm("b"))
    cluster.patch("configmaps", "b", {"metadata": {"labels": {"app": "web"}}}, namespace="ns")  # moves in
    cluster.patch("configmaps", "a", {"metadata": {"labels": {"app": "db"}}}, namespace="ns")  # moves out
    stream = cluster.watch(CM_PATH, {"resourceVersion": start, "labelSelector": "app=web"}, idle_timeout=5)
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in events_of(stream, 3)]
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    cluster.delete("configmaps", "b", namespace="ns")  # live, after the replay: no gap, no duplicate
    last = orjson.loads(next(stream))
    assert (last["type"], last["object"]["kind"], last["object"]["metadata"]["resourceVersion"]) == (
        "DELETED",
        "ConfigMap",
        cluster.resource_version,
    )
    assert stream.statistics().lines == 4
    stream.close()
    assert cluster.open_watches == 0


def test_a_watch_from_a_compacted_version_gets_a_410_error_event(cluster: FakeCluster) -> None:
    cluster.create("configmaps", cm("before"))
    start = cluster.resource_version
    cluster.create("configmaps", cm("a"))
    cluster.compact()
    stream = cluster.watch(CM_PATH, {"resourceVersion": start}, idle_timeout=5)
    (event,) = list(stream)  # the stream ends after the ERROR
    assert event.startswith(b'{"type":"ERROR"')
    assert orjson.loads(event)["object"]["code"] == 410


def test_streaming_list_sends_the_state_then_the_end_bookmark_then_changes(cluster: FakeCluster) -> None:
    cluster.create("configmaps", cm("a"))
    cluster.create("configmaps", cm("b"))
    query = {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "true"}
    stream = cluster.watch(CM_PATH, query, idle_timeout=5)
    initial = events_of(stream, 3)
    assert [e["type"] for e in initial] == ["ADDED", "ADDED", "BOOKMARK"]
    assert initial[2]["object"]["metadata"] == {
        "resourceVersion": cluster.resource_version,
        "annotations": {INITIAL_EVENTS_END_ANNOTATION: "true"},
    }
    cluster.send_bookmarks()
    cluster.create("configmaps", cm("c"))
    later = events_of(stream, 2)
    assert [e["type"] for e in later] == ["BOOKMARK", "ADDED"]
    stream.close()
    with pytest.raises(InvalidError, match="requires allowWatchBookmarks"):
        cluster.watch(CM_PATH, {"sendInitialEvents": "true"}, idle_timeout=5)
    old_server = FakeCluster(streaming_lists=False)
    with pytest.raises(InvalidError, match="WatchList"):
        old_server.watch(CM_PATH, query, idle_timeout=5)


def test_a_watch_without_a_version_starts_with_the_current_state(cluster: FakeCluster) -> None:
    cluster.create("configmaps", cm("a"))
    cluster.create("configmaps", {"metadata": {"name": "b", "namespace": "other"}})
    for query in ({}, {"resourceVersion": "0"}):
        stream = cluster.watch(CM_PATH, query, idle_timeout=5)
        (event,) = events_of(stream, 1)  # only ns's objects, no bookmark
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "a")
        stream.close()
    with pytest.raises(ServerTimeoutError):
        cluster.watch(CM_PATH, {"resourceVersion": "999"}, idle_timeout=5)


def test_close_from_another_thread_wakes_a_blocked_reader(cluster: FakeCluster) -> None:
    stream = cluster.watch(CM_PATH, {"resourceVersion": cluster.resource_version}, idle_timeout=60)
    ended = threading.Event()

    def read() -> None:
        assert list(stream) == []
        ended.set()

    reader = threading.Thread(target=read)
    reader.start()
    wait_until(lambda: reader.is_alive())
    stream.close()
    reader.join(5)
    assert ended.is_set() and stream.closed and cluster.open_watches == 0


def test_a_server_timeout_ends_the_watch_normally(cluster: FakeCluster) -> None:
    stream = cluster.watch(
        CM_PATH, {"resourceVersion": cluster.resource_version, "timeoutSeconds": "0"}, idle_timeout=60
    )
    assert list(stream) == []


# -- fault hooks -------------------------------------------------------------------------------


def test_fail_next_answers_with_typed_errors_a_given_number_of_times(cluster: FakeCluster) -> None:
    cluster.fail_next("LIST", CM_PATH, 403, times=2)
    for _ in range(2):
        with pytest.raises(ForbiddenError):
            cluster.get_json(CM_PATH)
    assert cluster.get_json(CM_PATH)["items"] == []
    cluster.fail_next("WATCH", "/api/v1", 429)
    with pytest.raises(TooManyRequestsError):
        cluster.watch(CM_PATH, idle_timeout=5)
    cluster.fail_next("POST", CM_PATH, 503)
    cluster.create("configmaps", cm("helpers-skip-faults"))  # the test helpers are never failed
    with pytest.raises(ServiceUnavailableError):
        cluster.request("POST", CM_PATH, body=cm("a"))
    assert [(w.method, w.status, w.source) for w in cluster.writes] == [("POST", 201, "test"), ("POST", 503, "client")]


def test_retry_after_is_honoured_like_the_real_client(cluster: FakeCluster) -> None:
    cluster.fail_next("POST", CM_PATH, 503, times=2, retry_after=0)
    made = cluster.request("POST", CM_PATH, body=cm("a")).json()
    assert made["metadata"]["name"] == "a" and cluster.statistics().retries == 2
    # An ApiWriter owns its retries (the client repeats nothing inside a writer call).
    writer = ApiWriter(cluster, WriterOptions(retries=1), sleep=lambda seconds: None)  # type: ignore[arg-type]
    cluster.fail_next("PATCH", CM_PATH, 503, times=2, retry_after=0)
    with pytest.raises(ServiceUnavailableError):
        writer.patch(Resource("", "v1", "configmaps", "ConfigMap", True), "a", {"data": {"k": "v"}}, namespace="ns")
    assert writer.statistics().attempts == 2


def test_cut_and_stalled_watches(cluster: FakeCluster) -> None:
    stream = cluster.watch(CM_PATH, {"resourceVersion": cluster.resource_version}, idle_timeout=60)
    assert cluster.cut_watches() == 1
    with pytest.raises(TransportError, match="connection lost"):
        next(stream)
    cluster.stall_watches()
    stalled = cluster.watch(CM_PATH, {"resourceVersion": cluster.resource_version}, idle_timeout=0.05)
    cluster.create("configmaps", cm("a"))  # queued, never delivered while stalled
    with pytest.raises(StreamStalledError):
        next(stalled)
    assert stalled.statistics().stalled
    resumed = cluster.watch(CM_PATH, {"resourceVersion": cluster.resource_version}, idle_timeout=60)
    cluster.create("configmaps", cm("b"))
    cluster.resume_watches()
    assert orjson.loads(next(resumed))["object"]["metadata"]["name"] == "b"
    resumed.close()


def test_a_hold_blocks_matching_requests_until_released_and_close_fails_them(cluster: FakeCluster) -> None:
    hold = cluster.hold("LIST", CM_PATH)
    results: list[Any] = []

    def list_it() -> None:
        try:
            results.append(cluster.get_json(CM_PATH)["items"])
        except ClientClosedError as exc:
            results.append(exc)

    blocked = threading.Thread(target=list_it)
    blocked.start()
    assert hold.wait_held()
    with pytest.raises(NotFoundError):
        cluster.get_json(f"{CM_PATH}/x")  # a GET of one object is no LIST: not held
    cluster.create("configmaps", cm("a"))
    hold.release()
    blocked.join(5)
    assert [[o["metadata"]["name"] for o in results[0]]] == [["a"]]  # answered after the release
    second = cluster.hold("LIST", CM_PATH)
    blocked = threading.Thread(target=list_it)
    blocked.start()
    assert second.wait_held()
    cluster.close()
    blocked.join(5)
    assert isinstance(results[1], ClientClosedError)
    with pytest.raises(ClientClosedError):
        cluster.get_json(CM_PATH)
    assert cluster.list("configmaps")[0]["metadata"]["name"] == "a"  # the data stays readable


def test_writes_from_many_threads_get_unique_increasing_versions(cluster: FakeCluster) -> None:
    versions: list[int] = []
    lock = threading.Lock()

    def make(prefix: str) -> None:
        for i in range(50):
            rv = int(cluster.create("configmaps", cm(f"{prefix}{i}"))["metadata"]["resourceVersion"])
            with lock:
                versions.append(rv)

    threads = [threading.Thread(target=make, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions) == list(range(1, 201))
    assert len(cluster.list("configmaps")) == 200


# -- the layers above the client ---------------------------------------------------------------


def test_discovery_serves_aggregated_documents_and_finds_resources_registered_later(cluster: FakeCluster) -> None:
    discovery = Discovery(cluster)  # type: ignore[arg-type]
    assert discovery.resolve_kind("Deployment") == Resource("apps", "v1", "deployments", "Deployment", True)
    assert discovery.resolve_kind("Event").group == ""  # the core group first
    assert discovery.resolve_kind("Widget", "example.com/v1").supports("watch")
    gadgets = cluster.register(Resource("example.com", "v1", "gadgets", "Gadget", namespaced=False))
    assert discovery.resolve("example.com", "v1", "gadgets") == gadgets
    assert discovery.statistics().aggregated is True
    legacy = cluster.get_json("/apis/example.com/v1")
    assert {r["name"] for r in legacy["resources"]} == {"widgets", "widgets/status", "gadgets"}


def test_api_writer_and_event_recorder_run_over_the_fake(cluster: FakeCluster) -> None:
    writer = ApiWriter(cluster, WriterOptions(field_manager="tests"))  # type: ignore[arg-type]
    made = writer.create(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"size": 1}})
    writer.patch_status(WIDGETS, "w", {"status": {"ready": True}}, namespace="ns")
    writer.patch(
        WIDGETS,
        "w",
        [{"op": "test", "path": "/spec/size", "value": 1}, {"op": "replace", "path": "/spec/size", "value": 2}],
        namespace="ns",
        patch_type=PatchType.JSON,
    )
    assert writer.delete(WIDGETS, "nope", namespace="ns") is None
    recorder = EventRecorder(writer, "example.com/widgets")
    recorder.normal(made, "Synced", "widget synced")
    assert recorder.flush(5)
    recorder.close()
    (event,) = cluster.list(Resource("events.k8s.io", "v1", "events", "Event", True), namespace="ns")
    assert event["regarding"]["uid"] == made["metadata"]["uid"] and event["note"] == "widget synced"
    client_writes = [(w.method, w.path, w.status) for w in cluster.writes if w.source == "client"]
    assert client_writes[:4] == [
        ("POST", "/apis/example.com/v1/namespaces/ns/widgets", 201),
        ("PATCH", "/apis/example.com/v1/namespaces/ns/widgets/w/status", 200),
        ("PATCH", "/apis/example.com/v1/namespaces/ns/widgets/w", 200),
        ("DELETE", "/apis/example.com/v1/namespaces/ns/widgets/nope", 404),
    ]
    assert cluster.writes[0].query == {"fieldManager": "tests"}
    assert cluster.get(WIDGETS, "w", namespace="ns")["status"] == {"ready": True}


def test_the_fake_kit_needs_no_cryptography() -> None:
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'cryptography':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import informers.testing.pytest_plugin\n"
        "from informers.testing.fake import FakeCluster\n"
        "FakeCluster().create('configmaps', {'metadata': {'name': 'a'}})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
