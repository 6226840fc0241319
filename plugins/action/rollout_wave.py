# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Pure, on the controller: no module process, no connection (see module_utils/tasks/rollout_task.py)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.rollout_task import WAVE_ARGSPEC, wave_task
from ansible_collections.gitops.k8s.plugins.plugin_utils.ansible_action import run_action


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        return run_action(self, task_vars, WAVE_ARGSPEC, wave_task)
