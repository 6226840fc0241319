#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: report
short_description: Write the GitOps run report as JSON and as a self-contained HTML page
version_added: 0.1.0
description:
  - Turns the per-application records of a run (the C(sync_result) fact set by the M(gitops.k8s.sync) role) into one
    row per application - revision (short sha and commit subject), SYNCED / OUT OF SYNC, HEALTHY / PROGRESSING /
    DEGRADED, what changed, the drift diff, unhealthy objects with their reasons, rollback and history.
  - Writes C(report.json) and C(report.html) into O(dest) on the controller, replacing the previous report. The HTML
    page has no external assets and opens from disk.
  - Secret values never appear - diffs come from M(gitops.k8s.diff), which masks them, and only known fields of the
    records are kept.
  - Writing the report is not a change to any managed system, so the task always returns C(changed=false); it is
    also written in check mode (then it reports what would happen).
author:
  - gitops.k8s developers (@gitops-k8s)
attributes:
  check_mode:
    support: full
    description: The report is written in check mode too, titled as a check-mode run.
  diff_mode:
    support: none
    description: Nothing to diff.
  action:
    support: full
    description: Runs on the controller.
options:
  results:
    description:
      - One record per application, as set by the M(gitops.k8s.sync) role in C(sync_result) - keys C(app), C(cluster),
        C(namespace), C(trigger), C(decision), C(check_mode), C(fetch), C(diff), C(apply), C(health), C(info),
        C(rollback), C(error) ({step, msg}), C(skipped) and C(suspended).
    type: list
    elements: dict
    required: true
  dest:
    description: Directory the report files are written to; created when missing.
    type: path
    required: true
  mode:
    description: Which playbook produced the run; shown in the title.
    type: str
    choices: [push, reconcile]
    default: push
  rollout:
    description:
      - What the C(gitops.k8s.rollout) playbook knows of its rollout - C(waves) (RV(gitops.k8s.rollout_plan#module:waves)),
        C(reached) (the cluster hosts whose wave ran) and C(kept) (cluster host -> the records
        M(gitops.k8s.app_info) read of a host no wave reached). The report then says how each wave went, why the rollout
        stopped and which revision each cluster runs (RV(rollout)), also in RV(lines).
    type: dict
"""

EXAMPLES = r"""
- name: Write the report of every application synced in this run
  gitops.k8s.report:
    results: "{{ groups['gitops_app_hosts'] | map('extract', hostvars, 'sync_result') | list }}"
    dest: /var/lib/gitops/report
    mode: reconcile
  run_once: true
  register: report

- name: Tell where it is
  ansible.builtin.debug:
    msg: "open {{ report.html }}"
"""

RETURN = r"""
json:
  description: Path of the JSON report.
  returned: success
  type: str
  sample: /var/lib/gitops/report/report.json
html:
  description: Path of the HTML page.
  returned: success
  type: str
  sample: /var/lib/gitops/report/report.html
summary:
  description: Counts over the applications - C(apps), C(synced), C(out_of_sync), C(healthy), C(degraded), C(failed),
    C(rolled_back), C(skipped), C(held), C(changed).
  returned: success
  type: dict
  sample: {"apps": 3, "synced": 2, "out_of_sync": 1, "healthy": 3, "degraded": 0, "failed": 0, "rolled_back": 0, "skipped": 0, "changed": 1}
failures:
  description: One line per failed application saying where it failed and why (and whether it was rolled back).
  returned: success
  type: list
  elements: str
  sample: ["web (cluster prod): failed at health: Deployment shop/web: 0 of 3 available; rolled back to 3f2a9c1"]
lines:
  description: One line per application - sync and health status, outcome, short revision and commit subject.
  returned: success
  type: list
  elements: str
  sample: ["web@prod: SYNCED, HEALTHY, synced at 3f2a9c1 (Scale web to 3 replicas)"]
apps:
  description:
    - One row per application - C(app), C(cluster), C(namespace), C(trigger), C(revision), C(short_revision), C(commit),
      C(author), C(sync), C(health), C(outcome) (synced, healed, drift, unchanged, failed, rolled back, suspended,
      skipped, would sync, would heal, held), C(ok), C(message), C(failed_step), C(changes), C(drift), C(unhealthy),
      C(rollback), C(held) (C(by), C(reason), C(until) of a change a window or promotion gate held), C(override)
      (why a push went through a window), C(history), C(duration).
  returned: success
  type: list
  elements: dict
stats:
  description:
    - What the push and reconcile playbooks publish to AWX with C(set_stats) as C(gitops_report) - C(html), C(summary),
      C(failures), and C(apps) with C(app), C(cluster), C(revision), C(sync), C(health) and C(outcome) of each row,
      and RV(rollout) when there is one.
  returned: success
  type: dict
rollout:
  description:
    - With O(rollout) - C(waves) (each C(number), C(name), C(hosts), C(state) passed, failed or not started, and
      C(message)), C(stopped) (why the rollout stopped, or null) and C(clusters) (each C(cluster), C(wave), C(state)
      and C(runs), application -> the revision it runs now).
  returned: success
  type: dict
"""
