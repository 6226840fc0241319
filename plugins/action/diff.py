# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Diff in the worker process when the module would run on this machine anyway (see
plugin_utils/ansible_action.runs_here): no module process to start, about a second less per task."""

from __future__ import annotations

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.diff_task import ARGSPEC, run_diff
from ansible_collections.gitops.k8s.plugins.plugin_utils.ansible_action import engine_action

ActionModule = engine_action(ARGSPEC, run_diff)
