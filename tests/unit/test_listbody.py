"""decode_list_body: a LIST answer split into raw items, validated before anything is handed out."""

from __future__ import annotations

import orjson
import pytest

from informers._listbody import RawInitApply, decode_list_body
from informers._watcher import Watcher
from informers.errors import MalformedResponseError
from informers.events import Init, InitDone


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
