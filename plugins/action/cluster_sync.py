# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Run the per-cluster engine in the worker process, printing one line per application as it
finishes (see plugins/action/health_wait.py for why and when: a module cannot print while it runs).
"""

from __future__ import annotations

from functools import partial

from ansible.plugins.action import ActionBase

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import failure
from ansible_collections.gitops.k8s.plugins.module_utils.apps.gitops_apps import order_apps
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.cluster_sync_task import ARGSPEC, run_task
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.plugin_utils.ansible_action import run_action, runs_here


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        self._task.args.setdefault("promotion_clusters", promotion_clusters(self._task.args, task_vars or {}))
        if not runs_here(self):
            return self._execute_module(task_vars=task_vars)
        try:
            # apps.py first: its messages name the application and the key (the argument spec's would not)
            order_apps(self._task.args.get("apps"), self._task.args.get("select"))
        except GitOpsError as err:
            return dict(super().run(tmp, task_vars), failed=True, **failure(err))
        # the play's vault secrets (--vault-id, AWX vault credentials) for the apps that name their ids
        return run_action(self, task_vars, ARGSPEC, partial(run_task, play_vault=self._loader._vault.secrets))


def promotion_clusters(args, task_vars):
    """Where the clusters the promotion gates name (apps' ``promote_after`` and the task's) keep
    their records: each cluster host's ``gitops_cluster`` and ``gitops_inventory_namespace``, as the
    inventory gives them. A name that is no host of the inventory is left out (the gate says so)."""
    gates = [app.get("promote_after") for app in args.get("apps") or () if isinstance(app, dict)]
    gates.append(args.get("promote_after"))
    names = sorted({gate["cluster"] for gate in gates
                    if isinstance(gate, dict) and isinstance(gate.get("cluster"), str)})
    hostvars = task_vars.get("hostvars") or {}
    places = []
    for name in names:
        if name not in hostvars:
            continue
        host = hostvars[name]
        places.append(dict(host.get("gitops_cluster") or {}, name=name,
                           inventory_namespace=host.get("gitops_inventory_namespace")))
    return places
