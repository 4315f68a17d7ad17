"""docs/plugins.md's control-plane sample (``tests/test_greeting_cluster.py`` there) runs, as
printed, against the real etcd + kube-apiserver: the guide's reconciler creates the card, the
record in the other namespace, and its finalizer removes the record on delete."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from informers.testing import ControlPlane

from ..doc_samples import imported_samples

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_plugin_guides_control_plane_sample_passes(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
):
    with imported_samples(GUIDE.read_text(), tmp_path, "greeting_plugin") as modules:
        module = modules["tests/test_greeting_cluster.py"]
        tests = [
            fn for name, fn in vars(module).items() if name.startswith("test_") and inspect.iscoroutinefunction(fn)
        ]
        assert len(tests) == 1
        await tests[0](control_plane, namespace)
