#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_plan
short_description: Plan the waves of a rollout over the cluster hosts of a run
version_added: 0.2.0
description:
  - Resolves C(gitops_rollout) - a list of waves - over the cluster hosts of the run, which is what the
    C(gitops.k8s.rollout) playbook does first. Pure - it reads no cluster.
  - "A wave takes, in O(hosts) order, the hosts its C(hosts) names that no earlier wave took: a group of the inventory,
    a cluster host name or a glob on them, or a percentage (C(25%)), cumulative - the waves so far reach that share of
    the run's cluster hosts, rounded down but at least one. Every host must be in a wave: end with C({hosts: 100%})."
  - A wave's C(bake) (seconds or C(5m)) is how long its clusters must stay healthy after they are; C(max_unavailable)
    (a count or C(N%)) or C(max_fail_percentage) (as Ansible's) how many of them may fail with the wave passing
    (default none).
  - See C(docs/rollouts-and-windows.md).
author:
  - gitops.k8s developers (@gitops-k8s)
attributes:
  check_mode:
    support: full
    description: Plans the same in check mode.
  diff_mode:
    support: none
    description: Nothing to diff.
  action:
    support: full
    description: Runs on the controller.
options:
  waves:
    description:
      - The waves, each a mapping with C(hosts) (required), C(bake), C(max_unavailable) or C(max_fail_percentage).
      - Required; an error names C(gitops_rollout) when it is missing or wrong.
    type: raw
  hosts:
    description: The cluster hosts of the run, in order (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  groups:
    description: The inventory's groups (C(groups)), for waves that name a group.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Plan the waves
  gitops.k8s.rollout_plan:
    waves:
      - {hosts: canary, bake: 300}
      - {hosts: "25%", bake: 120, max_unavailable: 1}
      - {hosts: "100%"}
    hosts: "{{ ansible_play_hosts_all }}"
    groups: "{{ groups }}"
  run_once: true
  register: plan
"""

RETURN = r"""
waves:
  description: One entry per wave - C(number) (from 1), C(name) (C(wave 2 (25%))), C(hosts), C(bake) (seconds) and
    C(max_failures) (how many of its hosts may fail with the wave passing).
  returned: success
  type: list
  elements: dict
order:
  description: The hosts in wave order.
  returned: success
  type: list
  elements: str
serial:
  description: The size of each wave that has hosts, for a play's C(serial) over RV(order).
  returned: success
  type: list
  elements: int
  sample: [1, 1, 2]
hosts:
  description: Per host, its C(wave) number and C(bake).
  returned: success
  type: dict
  sample: {"eu-1": {"wave": 1, "bake": 300.0}}
lines:
  description: One line per wave - its hosts, bake and how many may fail.
  returned: success
  type: list
  elements: str
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.rollout_task import PLAN_ARGSPEC, plan_task


def main():
    run_module(PLAN_ARGSPEC, plan_task)


if __name__ == "__main__":
    main()
