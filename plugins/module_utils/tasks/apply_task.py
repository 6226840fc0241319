# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The apply task, run by its module and by its action plugin: a bundle applied as the options say."""

from __future__ import annotations

from ..sync.apply import Options, apply
from ..bundle import Bundle
from ..cluster.client import Cluster
from ..sync.ignore import IGNORE_ARGSPEC
from .option_specs import CLUSTER_ARGSPEC, INVENTORY_ARGSPEC

ARGSPEC = dict(
    CLUSTER_ARGSPEC,
    bundle={"type": "path", "required": True},
    app={"type": "str", "required": True},
    revision={"type": "str"},
    trigger={"type": "str", "default": "push", "choices": ["push", "pull"]},
    rollback_of={"type": "str"},
    field_manager={"type": "str", "default": "gitops.k8s"},
    force_conflicts={"type": "bool", "default": True},
    prune={"type": "bool", "default": False},
    prune_allow_empty={"type": "bool", "default": False},
    prune_propagation={"type": "str", "default": "background", "choices": ["background", "foreground", "orphan"]},
    create_namespaces={"type": "bool", "default": True},
    concurrency={"type": "int", "default": 8},
    wait_waves={"type": "bool"},
    timeout={"type": "int", "default": 300},
    custom_health={"type": "list", "elements": "dict"},
    lock={"type": "bool", "default": True},
    lock_timeout={"type": "int", "default": 60},
    history_limit={"type": "int", "default": 10},
    adopt={"type": "bool", "default": False},
    replace_on_immutable={"type": "bool", "default": False},
    managed_namespace_metadata={"type": "dict", "options": {"labels": {"type": "dict"}, "annotations": {"type": "dict"}}},
    show_secrets={"type": "bool", "default": False},
    **IGNORE_ARGSPEC,
    **INVENTORY_ARGSPEC,
)


def run_apply(call):
    params = call.params
    bundle = Bundle.load(params["bundle"])
    cluster = Cluster.from_params(params, pool_size=max(16, params["concurrency"]))
    options = Options(
        revision=params["revision"] or bundle.revision,
        prune_propagation=params["prune_propagation"].capitalize(),
        ignore=params["ignore_differences"],
        **{name: params[name] for name in (
            "field_manager", "force_conflicts", "prune", "prune_allow_empty", "create_namespaces", "concurrency",
            "wait_waves", "timeout", "lock", "lock_timeout", "history_limit", "adopt", "inventory_namespace",
            "inventory_kind", "trigger", "rollback_of", "custom_health", "show_secrets", "replace_on_immutable",
            "managed_namespace_metadata")}
    )
    result = apply(cluster, bundle, params["app"], options, check=call.check_mode, want_diff=call.diff_mode)
    result["api_requests"] = cluster.requests_made
    return result
