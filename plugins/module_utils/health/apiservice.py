# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""apiregistration.k8s.io/v1 APIService: Available.

Unavailable is Progressing, not Degraded: a new APIService is unavailable until the pods behind
its Service start, and a timeout reports the condition's reason if they never do.
"""

from __future__ import annotations

from .status import Health, condition, condition_text


def apiservice(obj):
    available = condition(obj, "Available")
    if available and available.get("status") == "True":
        return Health.HEALTHY, "available"
    if available:
        return Health.PROGRESSING, "not available: %s" % condition_text(available)
    return Health.PROGRESSING, "waiting for the aggregator to check it"
