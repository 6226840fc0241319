# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Print progress lines while health_wait waits.

A module cannot print while it runs: its output is read when it exits. With a local connection
(how cluster hosts are reached) the module would run on this machine anyway, so the action runs
the same engine in the worker process and prints each progress line through Display, which
forwards it to the terminal at once. With any other connection, a task ``environment``, or
without the kubernetes library on the controller, it runs the module as usual (no live lines).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.health_wait_task import TASK_ARGSPEC, TASK_RULES, task

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
        # a task `environment` (K8S_AUTH_* for instance) only reaches a module process
        if self._connection.transport != "local" or any(self._task.environment or ()) or not _controller_has_kubernetes():
            return self._execute_module(task_vars=task_vars)
        result = super().run(tmp, task_vars)
        dummy, params = self.validate_argument_spec(argument_spec=TASK_ARGSPEC, **TASK_RULES)
        host = (task_vars or {}).get("inventory_hostname", "localhost")
        try:
            outcome, failure = task(params, check_mode=self._play_context.check_mode,
                                    progress=lambda line: display.display("  [%s] %s" % (host, line)))
        except GitOpsError as err:
            result.update(err.details, failed=True, msg=str(err))
            return result
        result.update(outcome)
        if failure:
            result.update(failed=True, msg=failure)
        return result
