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

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.health_wait_task import run_health_wait
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.option_specs import HEALTH_WAIT_ARGSPEC, HEALTH_WAIT_RULES
from ansible_collections.gitops.k8s.plugins.plugin_utils.ansible_action import engine_action

ActionModule = engine_action(HEALTH_WAIT_ARGSPEC, run_health_wait, **HEALTH_WAIT_RULES)
