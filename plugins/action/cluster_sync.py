# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Run the per-cluster engine in the worker process, printing one line per application as it
finishes (see plugins/action/health_wait.py for why and when: a module cannot print while it runs).
"""

from __future__ import annotations

import json

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.gitops.k8s.plugins.module_utils.apps import plan
from ansible_collections.gitops.k8s.plugins.module_utils.cluster_sync_task import ARGSPEC, run_task
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError

display = Display()


def _controller_has_kubernetes():
    try:
        import kubernetes  # noqa: F401  (only whether it imports matters)
    except ImportError:
        return False
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        if self._connection.transport != "local" or any(self._task.environment or ()) or not _controller_has_kubernetes():
            return self._execute_module(task_vars=task_vars)
        result = super().run(tmp, task_vars)
        try:
            # apps.py first: its messages name the application and the key (the argument spec's would not)
            plan(self._task.args.get("apps"), self._task.args.get("select"))
            dummy, params = self.validate_argument_spec(argument_spec=ARGSPEC)
            # plain values, as a module process would get them (templated ones carry Ansible's tags,
            # which the YAML dumper of the bundle refuses)
            params = json.loads(json.dumps(params))
            result.update(run_task(params, check=self._play_context.check_mode, want_diff=self._play_context.diff,
                                   progress=lambda line: display.display("  " + line)))
        except GitOpsError as err:
            result.update(err.details, failed=True, msg=str(err))
        return result
