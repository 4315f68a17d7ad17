"""decode_list_body: a LIST answer split into raw items, validated before anything is handed out;
parse_item/split_watch_line: the initial list's objects stored without building a dict."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from informers._listbody import InitApplyItem, RawInitApply, RawItem, decode_list_body, parse_item, split_watch_line
from informers._watcher import Watcher, WatcherStateError
from informers.errors import MalformedResponseError
from informers.events import Init, InitDone
from informers.store import Store


def pod(name: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": "5"},
        "spec": {"a": [1]},
    }


def body(items: object, **extra: object) -> bytes:
    return orjson.dumps(
        {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}, "items": items, **extra}
    )


def test_items_come_out_as_their_exact_json() -> None:
    page = decode_list_body(body([pod("a"), pod("b")]))
    assert page.kind == "PodList" and page.api_version == "v1" and page.metadata == {"resourceVersion": "9"}
    assert [orjson.loads(item) for item in page.items] == [pod("a"), pod("b")]


def test_a_decoded_item_gets_the_kind_and_api_version_list_items_omit() -> None:
    page = decode_list_body(body([pod("a"), {**pod("b"), "kind": "Other"}]))
    first, second = (RawInitApply(item, "Pod", "v1").decode() for item in page.items)
    assert first == {**pod("a"), "kind": "Pod", "apiVersion": "v1"}
    assert second["kind"] == "Other"  # what the item says wins


def test_null_or_missing_items_are_an_empty_page() -> None:
    assert decode_list_body(body(None)).items == []
    assert decode_list_body(b'{"metadata": {"resourceVersion": "1"}}').items == []


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1, 2]",
        b'{"items": []}',  # no metadata
        body("nope"),
        body([pod("a"), 3]),
        body([pod("a"), {"metadata": {}}]),
        body([{"metadata": {"name": ""}}]),
        body([pod("a")])[:-5],  # truncated
    ],
)
def test_a_malformed_body_raises_before_any_item_is_handed_out(data: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        decode_list_body(data)


def test_the_watcher_emits_raw_items_then_init_done() -> None:
    watcher = Watcher(page_size=500, streaming_list=False)
    watcher.next_request()
    events = watcher.on_raw_list_page(decode_list_body(body([pod("a"), pod("b")])))
    assert isinstance(events[0], Init) and events[-1] == InitDone("9")
    raws = events[1:-1]
    assert all(isinstance(e, RawInitApply) for e in raws)
    assert [e.decode()["metadata"]["name"] for e in raws if isinstance(e, RawInitApply)] == ["a", "b"]
    assert watcher.state == "watching" and watcher.statistics().list_pages == 1


# --- parse_item / split_watch_line: the initial list's objects without a dict ------------------

_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-1",
        "namespace": "prod",
        "uid": "u-1",
        "resourceVersion": "42",
        "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
        "annotations": {"note": 'say "managedFields": [1]'},
    },
    "spec": {"nodeName": "n1"},
}


def _stripped(obj: dict[str, Any]) -> dict[str, Any]:
    out = orjson.loads(orjson.dumps(obj))
    out["metadata"].pop("managedFields", None)
    return out  # type: ignore[no-any-return]


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_parse_item_cuts_managed_fields_wherever_it_stands(position: str) -> None:
    meta = dict(_POD["metadata"])
    managed = meta.pop("managedFields")
    keys = list(meta)
    at = {"first": 0, "middle": 2, "last": len(keys)}[position]
    keys.insert(at, "managedFields")
    obj = {**_POD, "metadata": {k: managed if k == "managedFields" else meta[k] for k in keys}}
    item = parse_item(orjson.dumps(obj), strip_managed_fields=True)
    assert item is not None
    assert item.decode() == _stripped(obj)
    assert (item.key, item.uid, item.resource_version) == ("prod/web-1", "u-1", "42")


def test_parse_item_keeps_managed_fields_when_not_asked_to_cut() -> None:
    data = orjson.dumps(_POD)
    item = parse_item(data, strip_managed_fields=False)
    assert item is not None and item.data == data


def test_parse_item_adds_the_kind_and_api_version_list_items_omit() -> None:
    obj = {k: v for k, v in _POD.items() if k not in ("kind", "apiVersion")}
    item = parse_item(orjson.dumps(obj), strip_managed_fields=True, kind="Pod", api_version="v1")
    assert item is not None
    assert item.decode() == _stripped(_POD)
    cluster_scoped = parse_item(
        b'{"metadata":{"name":"n","resourceVersion":"1"}}', strip_managed_fields=True, kind="Node"
    )
    assert cluster_scoped is not None and cluster_scoped.key == "n"
    assert cluster_scoped.decode() == {"kind": "Node", "metadata": {"name": "n", "resourceVersion": "1"}}


@pytest.mark.parametrize(
    "data",
    [
        # a second "managedFields" member (in the spec of a custom resource): ambiguous
        b'{"metadata":{"name":"a","resourceVersion":"1","managedFields":[1]},"spec":{"managedFields":[1]}}',
        # spelled with a space after the colon (a pretty-printing proxy)
        b'{"metadata":{"name":"a","resourceVersion":"1","managedFields": [1]}}',
        b'{"metadata":{"resourceVersion":"1"}}',  # no name
        b'{"metadata":{"name":"a"}}',  # no resourceVersion
        b'{"metadata":{"name":"a","resourceVersion":"1","namespace":null}}',  # odd type
        b'{"metadata":"a"}',
        b"[1]",
        b'{"metadata":{"name":"a"',  # truncated
    ],
)
def test_parse_item_declines_anything_unusual(data: bytes) -> None:
    """None sends the caller down the general path, whose checks and errors stay as they were."""
    assert parse_item(data, strip_managed_fields=True) is None


def test_split_watch_line_gives_the_type_and_the_raw_object() -> None:
    line = orjson.dumps({"type": "ADDED", "object": _POD})
    split = split_watch_line(line)
    assert split is not None
    assert split[0] == "ADDED" and orjson.loads(split[1]) == _POD
    assert split_watch_line(b'{"type":"ADDED"}') is None
    assert split_watch_line(b"not json") is None


def test_a_raw_item_is_stored_as_the_dict_path_stores_it() -> None:
    plain, raw = Store(), Store()
    buffer = plain.begin_replace()
    buffer.add(_stripped(_POD))
    buffer.commit("42")
    buffer = raw.begin_replace()
    item = parse_item(orjson.dumps(_POD), strip_managed_fields=True)
    assert item is not None
    buffer.add_raw(item)
    raw_result = buffer.commit("42")
    assert raw.get("prod/web-1") == plain.get("prod/web-1") == _stripped(_POD)
    assert raw.by_index("namespace", "prod") == plain.by_index("namespace", "prod")
    assert raw.get_by_uid("u-1") == plain.get_by_uid("u-1")
    assert len(raw_result.added) == 1
    # a relist of the same version keeps the cached entry, as the dict path does
    again = raw.begin_replace()
    again.add_raw(item)
    assert len(again.commit("43").unchanged) == 1


def test_a_raw_item_feeds_user_index_functions_the_decoded_object() -> None:
    store = Store({"node": lambda obj: (obj["spec"]["nodeName"],)})
    buffer = store.begin_replace()
    item = parse_item(orjson.dumps(_POD), strip_managed_fields=True)
    assert item is not None
    buffer.add_raw(item)
    buffer.commit("42")
    assert [o["metadata"]["name"] for o in store.by_index("node", "n1")] == ["web-1"]


def test_a_streaming_list_hands_over_raw_items_with_the_same_bookkeeping() -> None:
    watcher = Watcher(page_size=500, streaming_list=True)
    watcher.next_request()
    assert watcher.streaming_initial
    item = parse_item(orjson.dumps(_POD), strip_managed_fields=True)
    assert item is not None
    first = watcher.on_initial_item(item)
    assert isinstance(first[0], Init) and first[1] == InitApplyItem(item)
    assert watcher.on_initial_item(item) == [InitApplyItem(item)]  # Init once per stream
    bookmark = {
        "type": "BOOKMARK",
        "object": {"metadata": {"resourceVersion": "50", "annotations": {"k8s.io/initial-events-end": "true"}}},
    }
    assert watcher.on_watch_event(bookmark)[-1] == InitDone("50")
    assert not watcher.streaming_initial
    assert watcher.statistics().events["ADDED"] == 2
    with pytest.raises(WatcherStateError):
        watcher.on_initial_item(item)


def test_a_list_body_read_for_the_store_hands_out_parsed_items_and_still_validates_each() -> None:
    odd = {"metadata": {"name": "odd", "namespace": None, "resourceVersion": "5"}}  # parse_item declines
    page = decode_list_body(body([pod("a"), odd]), raw_initial=True)
    first, second = page.items
    assert isinstance(first, RawItem) and first.key == "ns/a"
    assert first.decode()["kind"] == "Pod" and first.decode()["apiVersion"] == "v1"
    assert isinstance(second, memoryview)  # the general path decodes it
    watcher = Watcher(page_size=500, streaming_list=False)
    watcher.next_request()
    events = watcher.on_raw_list_page(page)
    assert events[1] == InitApplyItem(first) and isinstance(events[2], RawInitApply)
    with pytest.raises(MalformedResponseError, match="list item 1"):
        decode_list_body(body([pod("a"), {"metadata": {}}]), raw_initial=True)
