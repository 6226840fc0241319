# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""apiextensions.k8s.io/v1 CustomResourceDefinition: Established, or names refused."""

from __future__ import annotations

from .status import Health, condition, condition_text


def customresourcedefinition(obj):
    names = condition(obj, "NamesAccepted")
    if names and names.get("status") == "False":
        return Health.DEGRADED, "names not accepted: %s" % condition_text(names)
    established = condition(obj, "Established")
    if established and established.get("status") == "True":
        return Health.HEALTHY, "established"
    return Health.PROGRESSING, "waiting for the API server to serve it (Established)"
