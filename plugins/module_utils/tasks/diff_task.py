# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The diff task, run by its module and by its action plugin: what applying a bundle would change."""

from __future__ import annotations

from ..bundle import Bundle
from ..cluster.client import Cluster
from ..sync.compare import diff
from ..sync.ignore import IGNORE_ARGSPEC
from ..cluster.records import Inventory, key_secret_digests
from .option_specs import CLUSTER_ARGSPEC, INVENTORY_ARGSPEC

ARGSPEC = dict(
    CLUSTER_ARGSPEC,
    bundle={"type": "path", "required": True},
    app={"type": "str"},
    field_manager={"type": "str", "default": "gitops.k8s"},
    show_secrets={"type": "bool", "default": False},
    concurrency={"type": "int", "default": 8},
    prune={"type": "bool", "default": True},
    replace_on_immutable={"type": "bool", "default": False},
    **IGNORE_ARGSPEC,
    **INVENTORY_ARGSPEC,
)


def run_diff(call):
    params = call.params
    bundle = Bundle.load(params["bundle"])
    cluster = Cluster.from_params(params, pool_size=max(16, params["concurrency"]))
    record = None
    if params["app"]:
        store = Inventory(cluster, params["inventory_namespace"], params["inventory_kind"])
        record = store.read(params["app"])[0]
        bundle = key_secret_digests(bundle, store.digest_key())
    result = diff(cluster, bundle, record, field_manager=params["field_manager"], ignore=params["ignore_differences"],
                  show_secrets=params["show_secrets"], concurrency=params["concurrency"], prune=params["prune"],
                  replace_on_immutable=params["replace_on_immutable"])
    result.update(api_requests=cluster.requests_made, api_retries=cluster.retries_made)
    return result
