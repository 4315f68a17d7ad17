"""The chaos suite's faults: each kind is one method that injects it and ends it again, and a seeded
schedule that draws them one after another with calm gaps in between, counting each kind.

Faults act on the network between the informers and the apiserver (a ``FaultProxy``), on the
apiserver process (kill, graceful restart), on etcd (compaction while the informers are cut off),
on admission (a 429 storm against a non-admin identity under a restrictive priority level) and on
authorisation (the identity may list but not watch for a while, then is granted again).
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3

from informers._watcher import Listing
from informers.informer import SharedInformer
from informers.testing import ControlPlane, ControlPlaneError, FaultProxy

RBAC = "/apis/rbac.authorization.k8s.io/v1"
FLOWCONTROL = "/apis/flowcontrol.apiserver.k8s.io/v1"


DEFAULT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (("", ("configmaps", "podtemplates")),)


def grant(
    plane: ControlPlane,
    namespace: str,
    user: str,
    verbs: list[str],
    rules: tuple[tuple[str, tuple[str, ...]], ...] = DEFAULT_RULES,
) -> None:
    """``user`` may do ``verbs`` on the ``rules``' (apiGroup, resources) in ``namespace`` (a Role
    and its binding, replaced if they exist)."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": user, "namespace": namespace},
        "rules": [{"apiGroups": [group], "resources": list(resources), "verbs": verbs} for group, resources in rules],
    }
    status, _ = plane.request("PUT", f"{RBAC}/namespaces/{namespace}/roles/{user}", role)
    if status == 404:
        plane.request_json("POST", f"{RBAC}/namespaces/{namespace}/roles", role)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": user, "namespace": namespace},
        "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
    }
    plane.request("POST", f"{RBAC}/namespaces/{namespace}/rolebindings", binding)


def restrict_priority(plane: ControlPlane, user: str, *, queue: int = 0) -> None:
    """Put ``user`` alone in a priority level of one seat, no borrowing, that rejects what it
    cannot seat at once (``queue=0``: two concurrent requests of that user and one gets 429) or
    queues up to ``queue`` requests first (then only a flood gets 429s)."""
    response: dict[str, Any] = {"type": "Reject"}
    if queue:
        response = {"type": "Queue", "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": queue}}
    level = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": f"chaos-{user}"},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 1,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": response,
            },
        },
    }
    plane.request_json("POST", f"{FLOWCONTROL}/prioritylevelconfigurations", level, expect=(201, 409))
    schema = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": f"chaos-{user}"},
        "spec": {
            "priorityLevelConfiguration": {"name": f"chaos-{user}"},
            "matchingPrecedence": 100,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [{"kind": "User", "user": {"name": user}}],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "namespaces": ["*"],
                            "clusterScope": True,
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
    plane.request_json("POST", f"{FLOWCONTROL}/flowschemas", schema, expect=(201, 409))


class FaultKit:
    """Every fault kind, applied to one control plane through one proxy. Faults run one at a time,
    on the thread that calls them; each returns only once it has ended (the system is whole again,
    though informers may still be recovering)."""

    def __init__(
        self,
        plane: ControlPlane,
        proxy: FaultProxy,
        rng: random.Random,
        *,
        stall_seconds: float,
        user_kubeconfig: Path,
        storm_path: str,
        allow_watch: Callable[[bool], None],
        paged: SharedInformer | None = None,
    ) -> None:
        """``user_kubeconfig``: the non-admin identity the 429 storms flood as (GETs of
        ``storm_path``); ``allow_watch(False)`` leaves it allowed to list but not to watch."""
        self.plane = plane
        self.proxy = proxy
        self.rng = rng
        self.stall_seconds = stall_seconds
        self.user_kubeconfig = user_kubeconfig
        self.storm_path = storm_path
        self.allow_watch = allow_watch
        self.paged = paged  # an informer listing in small pages, for the mid-list death
        self.counts: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()  # what the faults observed (429s seen, lists caught...)
        self.restart_seconds: list[float] = []
        self.last_fault_end = time.monotonic()

    def inject(self, kind: str) -> None:
        """One fault of ``kind``, counted; returns once it has ended."""
        self.kinds()[kind]()
        self.counts[kind] += 1
        self.last_fault_end = time.monotonic()

    def kinds(self) -> dict[str, Callable[[], None]]:
        return {
            "cut": self.cut,
            "stall": self.stall,
            "latency": self.latency,
            "refuse": self.refuse,
            "compaction-cut-off": self.compaction_cut_off,
            "apiserver-kill": self.apiserver_kill,
            "apiserver-restart": self.apiserver_restart,
            "429-storm": self.storm,
            "mid-list-death": self.mid_list_death,
            "rbac-list-only": self.rbac_list_only,
        }

    # -- network ------------------------------------------------------------------------------
    def cut(self) -> None:
        self.notes["connections cut"] += self.proxy.cut()

    def stall(self) -> None:
        self.proxy.stall()  # half-open: beyond the idle deadline, so stalls are detected, not waited out
        time.sleep(self.stall_seconds)
        self.proxy.pass_through()

    def latency(self) -> None:
        self.proxy.set_latency(self.rng.uniform(0.02, 0.15))
        time.sleep(self.rng.uniform(1.0, 3.0))
        self.proxy.set_latency(0)

    def refuse(self) -> None:
        self.proxy.refuse()
        self.proxy.cut()
        time.sleep(self.rng.uniform(0.5, 2.5))
        self.proxy.pass_through()

    def compaction_cut_off(self) -> None:
        """Cut off, let the writer go on, compact etcd to now, reconnect: resuming watches of an
        uncached resource (PodTemplates here) get 410 and relist."""
        self.proxy.refuse()
        self.proxy.cut()
        time.sleep(self.rng.uniform(0.5, 1.5))
        self._compact()
        self.proxy.pass_through()

    def _bump_etcd(self) -> None:
        """One write to etcd outside the apiserver's keys: the revision moves on."""
        key, value = base64.b64encode(b"/chaos/bump").decode(), base64.b64encode(b"x").decode()
        self.plane._etcd_post("/v3/kv/put", {"key": key, "value": value})

    def _compact(self) -> None:
        try:
            self.plane.compact_etcd()
            self.notes["etcd compactions"] += 1
        except ControlPlaneError:  # nothing written since the last one: that revision is compacted
            self.notes["compactions with nothing new"] += 1

    # -- the apiserver ------------------------------------------------------------------------
    def _restart(self, kill: bool) -> None:
        started = time.monotonic()
        self.plane.restart_apiserver(kill=kill)
        self.restart_seconds.append(time.monotonic() - started)

    def apiserver_kill(self) -> None:
        self._restart(kill=True)

    def apiserver_restart(self) -> None:
        self._restart(kill=False)

    def mid_list_death(self) -> None:
        """Make the paged informer relist slowly (latency; compaction then a cut gives its
        PodTemplate watch a 410), kill the apiserver while it holds a continue token, compact etcd
        while the apiserver is down (the token expires), start it again: the next page is a 410
        and the informer falls back to one full list."""
        informer = self.paged
        assert informer is not None
        self.proxy.set_latency(0.05)
        caught = False
        for _ in range(3):  # the relist may be over before it is seen: try again
            self._bump_etcd()  # the compacted revision is then past the informer's: its watch gets 410
            self._compact()
            self.proxy.cut()
            deadline = time.monotonic() + 5
            while not caught and time.monotonic() < deadline:
                phase = informer.watcher.phase
                caught = isinstance(phase, Listing) and bool(phase.continue_token)
                time.sleep(0.002)
            if caught:
                break
        started = time.monotonic()
        self.plane.stop_apiserver(kill=True)
        self._bump_etcd()
        self._compact()
        self.proxy.set_latency(0)
        self.plane.start_apiserver()
        self.restart_seconds.append(time.monotonic() - started)
        self.notes["mid-list deaths with a continue token held" if caught else "mid-list deaths missed"] += 1

    # -- admission and authorisation -----------------------------------------------------------
    def storm(self) -> None:
        """A few threads of the same non-admin identity flood its one-seat priority level."""
        pool = urllib3.PoolManager(
            ca_certs=str(self.plane.ca_file),
            cert_file=str(self._user_file("client-certificate")),
            key_file=str(self._user_file("client-key")),
            maxsize=8,
        )
        stop = threading.Event()
        path = self.plane.server + self.storm_path

        def flood() -> Counter[int]:
            seen: Counter[int] = Counter()
            while not stop.is_set():
                try:
                    seen[pool.request("GET", path, retries=False, timeout=5.0).status] += 1
                except urllib3.exceptions.HTTPError:
                    seen[0] += 1
            return seen

        with ThreadPoolExecutor(6) as threads:
            futures = [threads.submit(flood) for _ in range(6)]
            time.sleep(self.rng.uniform(1.5, 3.0))
            stop.set()
            for future in futures:
                self.notes["429s answered to the storm"] += future.result()[429]
        pool.clear()

    def _user_file(self, field: str) -> str:
        import orjson

        config: dict[str, Any] = orjson.loads(self.user_kubeconfig.read_bytes())
        return str(config["users"][0]["user"][field])

    def rbac_list_only(self) -> None:
        """The identity may list but not watch, its open watches cut; then it is granted again."""
        self.allow_watch(False)
        self.proxy.cut()
        time.sleep(self.rng.uniform(1.5, 3.0))
        self.allow_watch(True)

    # -- the schedule -------------------------------------------------------------------------
    def run(self, kinds: list[str], seconds: float, calm: tuple[float, float] = (0.3, 1.5)) -> None:
        """Draw faults from ``kinds`` (seeded) until ``seconds`` have passed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.inject(self.rng.choice(kinds))
            time.sleep(self.rng.uniform(*calm))
