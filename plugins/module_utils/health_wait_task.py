# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The health_wait task, shared by its module and its action plugin: options in, result out."""

from __future__ import annotations

from .bundle import Bundle
from .cluster import CLUSTER_ARGSPEC, Cluster
from .errors import GitOpsError
from .health_watch import wait_healthy
from .inventory import INVENTORY_ARGSPEC, current_entry, read_record, record_health

TASK_ARGSPEC = dict(CLUSTER_ARGSPEC, **INVENTORY_ARGSPEC, **{
    "app": {"type": "str"},
    "bundle": {"type": "path"},
    "resources": {"type": "list", "elements": "dict"},
    "timeout": {"type": "float", "default": 300},
    "fail_fast": {"type": "bool", "default": True},
    "ignore": {"type": "list", "elements": "raw", "default": []},
    "wait": {"type": "bool", "default": True},
    "custom_health": {"type": "list", "elements": "dict", "default": []},
    "record": {"type": "bool", "default": True},
})
TASK_RULES = {"mutually_exclusive": [("app", "bundle", "resources")],
              "required_one_of": [("app", "bundle", "resources")]}


def task(params, check_mode=False, progress=None):
    """Run health_wait from module options; return (result, failure message or None)."""
    cluster = Cluster.from_params(params)
    synced = None  # the history entry of the sync being waited for, which gets the verdict
    if params.get("app"):
        record = read_record(cluster, params["app"], params["inventory_namespace"], params["inventory_kind"])
        if record is None:
            raise GitOpsError("app %s has no inventory record in namespace %s: apply it first"
                              % (params["app"], params["inventory_namespace"]), app=params["app"])
        refs = record.get("objects") or []
        synced = current_entry(record)
    elif params.get("bundle"):
        # hooks are waited for by apply while it runs them, and may be deleted afterwards
        refs = [entry for entry in Bundle.load(params["bundle"]).entries if not entry.get("hook")]
    else:
        refs = params["resources"]
    wait = params["wait"] and not check_mode
    result = wait_healthy(cluster, refs, timeout=params["timeout"], fail_fast=params["fail_fast"],
                          custom_health=params["custom_health"], ignore=params["ignore"], wait=wait,
                          progress=progress)
    # Only a real wait is a verdict on the sync; a glance (wait=false, check mode) is not.
    result["recorded"] = None
    if synced and params["record"] and wait:
        result["recorded"] = record_health(cluster, params["app"], result["status"], synced,
                                           params["inventory_namespace"], params["inventory_kind"])
    result.update(changed=False, api_requests=cluster.requests_made)
    return result, (None if result["healthy"] or not wait else result["summary"])
