# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Ansible option specs used by more than one module or action plugin, in one place.

Each shared group matches the doc fragment of the same name (plugins/doc_fragments/); a
module's own options live in the module, beside its documentation. health_wait's are here
because its action plugin validates them too. ``ignore_differences`` (diff and apply) is still
defined beside the code that applies it (diff.py), which is being reworked.
"""

from __future__ import annotations

from ..cluster.records import INVENTORY_KINDS, INVENTORY_NAMESPACE

# How to reach the cluster (doc fragment gitops.k8s.cluster; K8S_AUTH_* fallbacks in cluster.py).
CLUSTER_ARGSPEC = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "ca_cert": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path", "no_log": False},
    "validate_certs": {"type": "bool"},
    "request_timeout": {"type": "float", "default": 60},
}

# Where the in-cluster records live (doc fragment gitops.k8s.inventory).
INVENTORY_ARGSPEC = {
    "inventory_namespace": {"type": "str", "default": INVENTORY_NAMESPACE},
    "inventory_kind": {"type": "str", "default": "ConfigMap", "choices": list(INVENTORY_KINDS)},
}

HEALTH_WAIT_ARGSPEC = dict(CLUSTER_ARGSPEC, **INVENTORY_ARGSPEC, **{
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
HEALTH_WAIT_RULES = {"mutually_exclusive": [("app", "bundle", "resources")],
                     "required_one_of": [("app", "bundle", "resources")]}
