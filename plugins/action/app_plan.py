# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Validate gitops_apps and plan a run, on the controller (nothing to send to a host)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gitops.k8s.plugins.module_utils.app_result import skipped_result
from ansible_collections.gitops.k8s.plugins.module_utils.apps.gitops_apps import order_apps
from ansible_collections.gitops.k8s.plugins.plugin_utils.ansible_action import run_action

ARGSPEC = {
    "apps": {"type": "list", "elements": "raw", "required": True},
    "select": {"type": "raw"},
    "cluster": {"type": "str"},
}


def host_name(app, cluster):
    return "%s@%s" % (app, cluster)


def plan_run(call):
    cluster = call.params["cluster"] or call.host
    planned = order_apps(call.params["apps"], call.params["select"])
    by_name = {app["name"]: app for app in planned["apps"]}
    planned["hosts"] = [
        {
            "name": host_name(name, cluster),
            "app": name,
            "cluster": cluster,
            "level": level,
            # only dependencies synced in this run can block; the others are already there
            "depends_on": [host_name(dep, cluster) for dep in by_name[name]["depends_on"]
                           if any(dep in names for names in planned["levels"])],
        }
        for level, names in enumerate(planned["levels"]) for name in names
    ]
    planned["skipped"] = [skipped_result(name, cluster, by_name[name]["namespace"], None, "suspended", suspended=True)
                          for name in planned["suspended"]]
    return dict(planned, changed=False)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        return run_action(self, task_vars, ARGSPEC, plan_run)
