import threading, time, anyio, sys
sys.path.insert(0, '.')
from informers import ApiClient, InformerFactory, load_config
from informers.testing import ControlPlane
from controllers import Controller, owns
def names(): return sorted(t.name for t in threading.enumerate())
with ControlPlane() as plane:
    base = names()
    async def main():
        with ApiClient(load_config(plane.admin_kubeconfig)) as client:
            async with InformerFactory(client, namespace="default") as f:
                inf = await f.informer("v1/configmaps")
                inf.add_handler(on_add=lambda o: None)
                async def ah(o): pass
                inf.add_handler(on_add=ah)
                await f.wait_synced(30); await anyio.sleep(1)
                a = names(); print("informer (1 plain + 1 async handler):", [n for n in a if n not in base])
                c = Controller(f, "v1/secrets", lambda r, o, ctx: None, triggers=[owns("v1/configmaps")])
                async with anyio.create_task_group() as g:
                    g.start_soon(c.run); await c.wait_synced(30); await anyio.sleep(1)
                    b = names(); print("+ controller (owns configmaps):", [n for n in b if n not in a])
                    g.cancel_scope.cancel()
    anyio.run(main)
