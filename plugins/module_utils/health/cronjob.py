# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""batch/v1 CronJob: healthy once scheduled, unless suspended or its last run did not succeed.

A CronJob has nothing to roll out, so it is never Progressing: waiting for its next run could
take hours.
"""

from __future__ import annotations

from .status import Health


def cronjob(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("suspend"):
        return Health.SUSPENDED, "suspended"
    scheduled, succeeded = status.get("lastScheduleTime"), status.get("lastSuccessfulTime")
    # RFC 3339 times in UTC ("...Z") compare correctly as strings
    if scheduled and not status.get("active") and (not succeeded or succeeded < scheduled):
        return Health.DEGRADED, "the job scheduled at %s did not succeed" % scheduled
    if status.get("active"):
        return Health.HEALTHY, "%d job(s) running" % len(status["active"])
    return Health.HEALTHY, "last success at %s" % succeeded if succeeded else "waiting for its first schedule"
