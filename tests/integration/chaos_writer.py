"""The chaos suite's writer: ``informers.testing.churn.ChurnWriter`` (shared with the soak bench),
under the name the suite has always used."""

from __future__ import annotations

from informers.testing.churn import Body, configmap_body, podtemplate_body
from informers.testing.churn import ChurnWriter as ChaosWriter

__all__ = ["Body", "ChaosWriter", "configmap_body", "podtemplate_body"]
