# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The health_wait task, run by its module and by its action plugin (options: option_specs.HEALTH_WAIT_ARGSPEC)."""

from __future__ import annotations

from ..bundle import Bundle
from ..cluster.client import Cluster
from ..errors import GitOpsError
from ..health.watch import wait_healthy
from ..cluster.records import current_entry, read_record, record_health


def run_health_wait(call):
    """Wait as the options say; the result fails with the summary when a real wait ends unhealthy."""
    params = call.params
    cluster = Cluster.from_params(params)
    synced = None  # the history entry of the sync being waited for, which gets the verdict
    if params.get("app"):
        record = read_record(cluster, params["app"], params["inventory_namespace"], params["inventory_kind"])
        if record is None:
            raise GitOpsError("app %s has no inventory record in namespace %s: apply it first"
                              % (params["app"], params["inventory_namespace"]), app=params["app"])
        # objects an app without prune left behind are not its health (nor a reason to roll back)
        refs = [o for o in record.get("objects") or () if not o.get("orphaned")]
        synced = current_entry(record)
    elif params.get("bundle"):
        # hooks are waited for by apply while it runs them, and may be deleted afterwards
        refs = [entry for entry in Bundle.load(params["bundle"]).entries if not entry.get("hook")]
    else:
        refs = params["resources"]
    wait = params["wait"] and not call.check_mode
    result = wait_healthy(cluster, refs, timeout=params["timeout"], fail_fast=params["fail_fast"],
                          custom_health=params["custom_health"], ignore=params["ignore"], wait=wait,
                          progress=call.progress)
    # Only a real wait is a verdict on the sync; a glance (wait=false, check mode) is not.
    result["recorded"] = None
    if synced and params["record"] and wait:
        result["recorded"] = record_health(cluster, params["app"], result["status"], synced,
                                           params["inventory_namespace"], params["inventory_kind"])
    result.update(changed=False, api_requests=cluster.requests_made)
    if wait and not result["healthy"]:
        result.update(failed=True, msg=result["summary"])
    return result
