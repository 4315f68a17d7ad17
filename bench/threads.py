"""Threads an informer and a controller add to a process, counted on a real control plane.

Usage: ``.venv/bin/python bench/threads.py``. Starts a local etcd + kube-apiserver, then prints the
names of the threads that appeared (a) for one shared informer with one plain and one async
handler, and (b) for a controller (primary Secrets, ``owns`` ConfigMaps) added next to it. Threads
named "AnyIO worker thread" belong to anyio's shared pool (reused, idle ones exit after 10 s):
they are not owned by the informer or the controller. Figures in README.md ("Concurrency").
"""

from __future__ import annotations

import threading

import anyio

from controllers import Controller, owns
from informers import ApiClient, InformerFactory, load_config
from informers.testing import ControlPlane


def names() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


async def count(kubeconfig: str, base: list[str]) -> None:
    with ApiClient(load_config(kubeconfig)) as client:
        async with InformerFactory(client, namespace="default") as factory:
            informer = await factory.informer("v1/configmaps")

            async def async_handler(obj: object) -> None:
                return None

            informer.add_handler(on_add=lambda obj: None)
            informer.add_handler(on_add=async_handler)
            await factory.wait_synced(30)
            await anyio.sleep(1)
            with_informer = names()
            print("informer (1 plain + 1 async handler):", [n for n in with_informer if n not in base])
            controller = Controller(
                factory, "v1/secrets", lambda request, obj, ctx: None, triggers=[owns("v1/configmaps")]
            )
            async with anyio.create_task_group() as group:
                group.start_soon(controller.run)
                await controller.wait_synced(30)
                await anyio.sleep(1)
                added = [n for n in names() if n not in with_informer]
                print("+ controller (primary secrets, owns configmaps):", added)
                group.cancel_scope.cancel()


def main() -> None:
    with ControlPlane() as plane:
        anyio.run(count, str(plane.admin_kubeconfig), names())


if __name__ == "__main__":
    main()
