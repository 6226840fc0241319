# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The one boundary between Ansible and the engine, action side (module_utils/tasks/ansible_module.py is the module side).

An action plugin runs the engine call in Ansible's worker process on the controller, with the
same Call and the same result shaping as a module: option validation, check and diff mode,
``ansible_diff``, ``failed``/``msg``, GitOpsError and missing libraries. Values of no_log options
are masked in the result as a module masks them. What an action adds: progress lines go to the
terminal as they come, ``call.host`` is the inventory host the task runs for, and no module
process is started (no AnsiballZ payload, no second interpreter: about a second per task).
"""

from __future__ import annotations

import json
from importlib.util import find_spec

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import Call, failure, shape_result
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError

display = Display()


def runs_here(action):
    """Whether the task's engine can run in this worker process: the module would run on this
    machine anyway (local connection), no task ``environment`` is set (it only reaches a module
    process: K8S_AUTH_* for instance) and the kubernetes library is importable here. Otherwise the
    action runs the module as usual."""
    return action._connection.transport == "local" and not any(action._task.environment or ()) \
        and find_spec("kubernetes") is not None


def run_action(action, task_vars, argument_spec, engine_call, **rules):
    """Validate the task's options, run ``engine_call(call) -> dict`` here, return the task result.

    ``rules`` are the argument spec's mutually_exclusive, required_one_of... as AnsibleModule takes them.
    """
    result = ActionBase.run(action, task_vars=task_vars)
    validation, params = action.validate_argument_spec(argument_spec=argument_spec, **rules)
    # plain values, as a module process gets them: templated ones carry Ansible's tags, which
    # the engine's YAML dumper (bundles) refuses
    params = json.loads(json.dumps(params))
    hidden = set(validation._no_log_values)
    host = (task_vars or {}).get("inventory_hostname", "localhost")
    call = Call(params, check_mode=action._play_context.check_mode, diff_mode=action._play_context.diff,
                progress=lambda line: display.display("  [%s] %s" % (host, line)), hide=hidden.add, host=host)
    try:
        outcome = shape_result(call, engine_call(call))
    except GitOpsError as err:
        outcome = dict(failure(err), failed=True)
    result.update(remove_values(outcome, hidden))
    return result


def engine_action(argument_spec, engine_call, **rules):
    """The ActionModule class of a task whose engine runs here when ``runs_here`` (else its module)."""

    class EngineAction(ActionBase):
        TRANSFERS_FILES = False

        def run(self, tmp=None, task_vars=None):
            if not runs_here(self):
                return self._execute_module(task_vars=task_vars)
            return run_action(self, task_vars, argument_spec, engine_call, **rules)

    return EngineAction
