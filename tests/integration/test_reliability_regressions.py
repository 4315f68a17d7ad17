"""Regression tests for defects an outside chaos and hostile-input run found, each against the
real control plane (issue 10)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controllers.circuit import CircuitState
from controllers.writer import ApiWriter, WriterOptions
from informers.client import ApiClient
from informers.config import load_config
from informers.errors import RequestTooLargeError
from informers.resources import Resource
from informers.testing import ControlPlane

pytestmark = pytest.mark.integration

PODTEMPLATES = Resource("", "v1", "podtemplates", "PodTemplate", namespaced=True)


@pytest.fixture
def writer(control_plane: ControlPlane) -> Iterator[ApiWriter]:
    client = ApiClient(load_config(str(control_plane.admin_kubeconfig)))
    api = ApiWriter(client, WriterOptions(field_manager="informerd-tests"))
    try:
        yield api
    finally:
        api.close()
        client.close()


def podtemplate(name: str, env_bytes: int = 10) -> dict[str, Any]:
    container = {"name": "c", "image": "i", "env": [{"name": "X", "value": "x" * env_bytes}]}
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}},
    }


def test_oversized_objects_are_refused_once_and_never_open_the_groups_circuit(writer: ApiWriter, namespace: str):
    """Defect 4: etcd's "request is too large" (objects of 1.5-3 MB) came back as a retryable 500,
    was retried, and counted against the breaker until a normal create in the group was shed."""
    before = writer.statistics().attempts
    for i in range(12):
        with pytest.raises(RequestTooLargeError, match="request is too large"):
            writer.create(PODTEMPLATES, podtemplate(f"big-{i}", int(1.8 * 1024 * 1024)), namespace=namespace)
    assert writer.statistics().attempts - before == 12  # one request each: no retries
    assert writer.breaker.state("v1") is CircuitState.CLOSED
    small = writer.create(PODTEMPLATES, podtemplate("small"), namespace=namespace)
    assert small["metadata"]["name"] == "small"
