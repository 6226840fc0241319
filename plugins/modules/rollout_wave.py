#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_wave
short_description: Decide whether a wave of a rollout passed
version_added: 0.2.0
description:
  - Given one wave of M(gitops.k8s.rollout_plan) and what M(gitops.k8s.cluster_sync) returned for each of its
    clusters, says whether the wave passed - what the C(gitops.k8s.rollout) playbook asks after each wave before it
    starts the next one. Pure - it reads no cluster.
  - A cluster passes when every application of it that is not suspended is OK (nothing failed, including the bake)
    and Healthy (or Suspended). A cluster of the wave without a result failed. The wave passes when at most its
    C(max_failures) clusters failed.
author:
  - gitops.k8s developers (@gitops-k8s)
attributes:
  check_mode:
    support: full
    description: Decides the same in check mode.
  diff_mode:
    support: none
    description: Nothing to diff.
  action:
    support: full
    description: Runs on the controller.
options:
  wave:
    description: One entry of RV(gitops.k8s.rollout_plan#module:waves).
    type: dict
    required: true
  syncs:
    description: Cluster host name -> the registered result of its M(gitops.k8s.cluster_sync) task.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Decide whether the wave passed
  gitops.k8s.rollout_wave:
    wave: "{{ plan.waves[0] }}"
    syncs: "{{ dict(ansible_play_batch | zip(ansible_play_batch | map('extract', hostvars, 'gitops_sync'))) }}"
  run_once: true
  register: wave

- name: Stop the rollout when it failed
  ansible.builtin.meta: end_play
  when: not wave.passed
"""

RETURN = r"""
passed:
  description: Whether the wave passed.
  returned: success
  type: bool
failed_clusters:
  description: The wave's clusters that failed, in order (also when few enough failed for the wave to pass).
  returned: success
  type: list
  elements: str
reasons:
  description: Per cluster with a result, why it failed (empty when it passed).
  returned: success
  type: dict
wave:
  description: The wave's name.
  returned: success
  type: str
  sample: wave 1 (canary)
msg:
  description: The verdict in one line, with the reason of each failed cluster.
  returned: success
  type: str
  sample: "wave 1 (canary) failed: 1 of 1 cluster failed: eu-1; none may fail | eu-1: web failed at health: ..."
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.rollout_task import WAVE_ARGSPEC, wave_task


def main():
    run_module(WAVE_ARGSPEC, wave_task)


if __name__ == "__main__":
    main()
