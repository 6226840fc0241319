#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: app_plan
short_description: Validate a list of GitOps applications and order them by dependencies
version_added: 0.1.0
description:
  - Checks a C(gitops_apps) list before anything touches a cluster - unknown keys, wrong types, missing C(name) or
    C(repo), duplicate names, dependencies on undefined applications and dependency cycles - and fails with a
    message naming the application and the key.
  - Orders the selected applications into levels; an application is in a later level than everything it
    C(depends_on), so the playbooks sync level by level and the applications of one level side by side.
  - Runs on the controller (action plugin); it contacts no cluster and no Git server.
  - The application keys are described in the collection's C(docs/applications.md).
author:
  - gitops.k8s developers (@gitops-k8s)
attributes:
  check_mode:
    support: full
    description: Only computes; behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing to diff.
  action:
    support: full
    description: Runs on the controller.
options:
  apps:
    description:
      - The applications, usually the C(gitops_apps) variable.
      - Each item is a mapping with the keys M(gitops.k8s.cluster_sync) documents under its O(gitops.k8s.cluster_sync#module:apps)
        option (the same keys, validated the same way).
    type: list
    elements: raw
    required: true
  select:
    description:
      - Names of the applications to plan, as a list or a comma-separated string. Default is all of them.
      - Dependencies outside the selection still order the run but are not synced.
    type: raw
  cluster:
    description:
      - Name of the cluster the applications are planned for, used in host names and the report.
      - Defaults to the inventory hostname.
    type: str
"""

EXAMPLES = r"""
- name: Validate and order the applications of this cluster
  gitops.k8s.app_plan:
    apps: "{{ gitops_apps }}"
    select: "{{ gitops_app | default(omit) }}"
  register: plan

- name: Show the order
  ansible.builtin.debug:
    msg: "{{ plan.levels }}"
"""

RETURN = r"""
apps:
  description: The applications with every key present (defaults filled in). Credential values are removed; C(credentials) lists the keys that were set.
  returned: success
  type: list
  elements: dict
levels:
  description: Names of the selected, not suspended applications, grouped so that every application comes after its dependencies.
  returned: success
  type: list
  elements: list
  sample: [["db", "cache"], ["api"], ["frontend"]]
selected:
  description: Names of the selected applications, in the order of O(apps).
  returned: success
  type: list
  elements: str
suspended:
  description: Names of the selected applications that have C(suspend) set; they are not synced and are reported as skipped.
  returned: success
  type: list
  elements: str
hosts:
  description:
    - One entry per application to sync, for C(ansible.builtin.add_host) - C(name) (C(app@cluster)), C(app), C(cluster),
      C(level) and C(depends_on) (the host names of the dependencies synced in this run).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "api@prod", "app": "api", "cluster": "prod", "level": 1, "depends_on": ["db@prod"]}]
skipped:
  description: One report record per suspended application (C(app), C(cluster), C(namespace), C(skipped), C(suspended)).
  returned: success
  type: list
  elements: dict
unknown_keys:
  description: The unknown keys of the application that was refused.
  returned: failure with unknown keys
  type: list
  elements: str
cycle:
  description: The dependency cycle that was found, as a path of application names.
  returned: failure with a dependency cycle
  type: list
  elements: str
  sample: ["a", "b", "a"]
"""
