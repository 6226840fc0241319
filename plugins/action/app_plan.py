# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Validate gitops_apps and plan a run, on the controller (nothing to send to a host)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gitops.k8s.plugins.module_utils.apps import plan
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError

ARGSPEC = {
    "apps": {"type": "list", "elements": "raw", "required": True},
    "select": {"type": "raw"},
    "cluster": {"type": "str"},
}


def host_name(app, cluster):
    return "%s@%s" % (app, cluster)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGSPEC)
        cluster = args["cluster"] or (task_vars or {}).get("inventory_hostname", "localhost")
        try:
            planned = plan(args["apps"], args["select"])
        except GitOpsError as err:
            result.update(err.details, failed=True, msg=str(err))
            return result
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
        planned["skipped"] = [{"app": name, "cluster": cluster, "namespace": by_name[name]["namespace"],
                               "skipped": "suspended", "suspended": True} for name in planned["suspended"]]
        result.update(planned, changed=False)
        return result
