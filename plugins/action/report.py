# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Write the run report (JSON + HTML) on the controller, where the person reading it is."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gitops.k8s.plugins.module_utils.report import rollout_report, run_report as report
from ansible_collections.gitops.k8s.plugins.plugin_utils.ansible_action import run_action

ARGSPEC = {
    "results": {"type": "list", "elements": "dict", "required": True},
    "dest": {"type": "path", "required": True},
    "mode": {"type": "str", "default": "push", "choices": ["push", "reconcile"]},
    "rollout": {"type": "dict"},
}


def write_report(call):
    built = report.build(call.params["results"], call.params["mode"], check_mode=call.check_mode)
    if call.params.get("rollout"):
        built["rollout"] = rollout_report.section(call.params["results"], call.params["rollout"])
        built["lines"] += rollout_report.lines(built["rollout"])
    paths = report.write(call.params["dest"], built)
    # The report is an artifact of the run, not managed state: writing it is not a change.
    return dict(changed=False, json=paths["json"], html=paths["html"], summary=built["summary"],
                failures=built["failures"], lines=built["lines"], apps=built["apps"],
                stats=report.stats(built, paths["html"]), rollout=built.get("rollout"))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        return run_action(self, task_vars, ARGSPEC, write_report)
