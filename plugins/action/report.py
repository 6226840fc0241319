# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Write the run report (JSON + HTML) on the controller, where the person reading it is."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gitops.k8s.plugins.module_utils import report
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError

ARGSPEC = {
    "results": {"type": "list", "elements": "dict", "required": True},
    "dest": {"type": "path", "required": True},
    "mode": {"type": "str", "default": "push", "choices": ["push", "reconcile"]},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGSPEC)
        built = report.build(args["results"], args["mode"], check_mode=self._play_context.check_mode)
        try:
            paths = report.write(args["dest"], built)
        except GitOpsError as err:
            result.update(err.details, failed=True, msg=str(err))
            return result
        # The report is an artifact of the run, not managed state: writing it is not a change.
        result.update(changed=False, json=paths["json"], html=paths["html"], summary=built["summary"],
                      failures=built["failures"], lines=built["lines"], apps=built["apps"])
        return result
