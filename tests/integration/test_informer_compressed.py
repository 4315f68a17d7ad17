"""An informer with the compressed store (``InformerOptions(store_compression="zstd")``) on a real
apiserver: a paginated first list trains the dictionary, watch events and a relist forced by etcd
compaction go through it, and the cache ends equal to the server, object for object."""

from __future__ import annotations

from typing import Any

import pytest

from informers.informer import InformerOptions, SharedInformer
from informers.objects import object_key
from informers.resources import Resource
from informers.testing import ControlPlane, FaultProxy

from .churn import create_podtemplates, podtemplate
from .support import EventLog, api_client, wait_cache_equals_server, wait_for

pytestmark = pytest.mark.integration

PODTEMPLATES = Resource("", "v1", "podtemplates", "PodTemplate", namespaced=True)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as the default transform caches it (no managedFields), without kind/apiVersion
    (list items come without them)."""
    out = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    out["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return out


def test_a_compressed_informer_survives_a_relist_and_ends_equal_to_the_server(
    control_plane: ControlPlane, namespace: str, fault_proxy: FaultProxy
):
    # PodTemplates have no watch cache in the kit: the first LIST is paginated (2 pages of 200),
    # and a watch from a compacted revision gets 410, hence a relist.
    path = f"/api/v1/namespaces/{namespace}/podtemplates"
    create_podtemplates(control_plane, namespace, 300)
    options = InformerOptions(
        store_compression="zstd", streaming_list=False, page_size=200, backoff_initial=0.1, backoff_cap=0.5
    )
    with api_client(control_plane.kubeconfig(server=fault_proxy.url)) as client:
        informer = SharedInformer(client, PODTEMPLATES, namespace=namespace, options=options)
        log = EventLog()
        informer.add_handler(on_notification=log)
        informer.start()
        try:
            assert informer.wait_synced_blocking(60)
            codec = informer.store.statistics().codec
            assert codec is not None and codec.trained and codec.trained_on == 256 and codec.dictionary_bytes > 0
            assert all(v.data.startswith(ZSTD_MAGIC) for v in informer.store.list_views())

            # Live events through the compressed form: an update, a delete, a create.
            updated = control_plane.request_json("GET", f"{path}/pt-00003")
            updated["metadata"].setdefault("labels", {})["changed"] = "yes"
            control_plane.request_json("PUT", f"{path}/pt-00003", updated)
            control_plane.request_json("DELETE", f"{path}/pt-00005")
            control_plane.request_json("POST", path, podtemplate("live-one", tier="x"))
            wait_cache_equals_server(informer, control_plane, path)

            # Cut off; deletes, an update and a create in the gap; compaction forces a relist.
            fault_proxy.refuse()
            fault_proxy.cut()
            gone = ["pt-00010", "pt-00100", "pt-00200"]
            for name in gone:
                control_plane.request_json("DELETE", f"{path}/{name}")
            changed = control_plane.request_json("GET", f"{path}/pt-00020")
            changed["metadata"].setdefault("labels", {})["changed"] = "in-gap"
            control_plane.request_json("PUT", f"{path}/pt-00020", changed)
            control_plane.request_json("POST", path, podtemplate("born-in-gap"))
            control_plane.compact_etcd()
            fault_proxy.pass_through()
            wait_for(lambda: informer.statistics().watcher.relists >= 1, 30, "a relist after 410")
            wait_cache_equals_server(informer, control_plane, path)

            tombstones = {n.key: n for n in log.snapshot() if getattr(n, "final_state_unknown", False)}
            assert sorted(tombstones) == sorted(f"{namespace}/{n}" for n in gone)
            for k, note in tombstones.items():  # the last known state, decoded from its frame
                assert object_key(note.last_state) == k  # type: ignore[attr-defined]

            server = {object_key(o): _comparable(o) for o in control_plane.request_json("GET", path)["items"]}
            cache = {object_key(o): _comparable(o) for o in informer.store.list()}
            assert cache == server
            assert cache[f"{namespace}/pt-00020"]["metadata"]["labels"]["changed"] == "in-gap"
            stats = informer.store.statistics()
            assert stats.codec == codec  # the relist kept the dictionary
            views = informer.store.list_views()
            assert all(v.data.startswith(ZSTD_MAGIC) for v in views)
            assert stats.bytes_held * 2 < sum(len(v.to_json()) for v in views)
        finally:
            informer.stop()
