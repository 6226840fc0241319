#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: app_info
short_description: Read the in-cluster inventory of one or every application - revision, result, history, objects
version_added: 0.1.0
description:
  - Reads the records M(gitops.k8s.apply) keeps in the cluster, for dashboards, reports and decisions such as
    "which revision was last healthy?".
  - With O(app), that application's record; without, the record of every application in O(inventory_namespace).
  - Read-only; it runs the same in check mode.
author:
  - gitops.k8s developers (@gitops-k8s)
extends_documentation_fragment:
  - gitops.k8s.cluster
  - gitops.k8s.inventory
attributes:
  check_mode:
    support: full
    description: Nothing is changed in any mode.
  diff_mode:
    support: none
    description: Nothing to diff.
options:
  app:
    description: Name of the application. Omit it to read every application.
    type: str
  objects:
    description: Include the list of objects of each record (leave off for a compact dashboard of many apps).
    type: bool
    default: true
  rollback_from:
    description:
      - The revision that just failed to sync. With O(app), the result then says where a rollback would go
        (RV(rollback_target)) - the newest history entry recorded C(Healthy) (or C(Suspended), which counts as healthy)
        by M(gitops.k8s.health_wait) whose revision is another one - or why there is nowhere to go
        (RV(rollback_message)).
    type: str
seealso:
  - module: gitops.k8s.apply
"""

EXAMPLES = r"""
- name: Last synced revision of guestbook
  gitops.k8s.app_info:
    app: guestbook
  register: info

- name: Show it
  ansible.builtin.debug:
    msg: "{{ info.record.revision }} ({{ info.record.result }})"
  when: info.record is not none

- name: Where would a rollback of guestbook from a failed commit go?
  gitops.k8s.app_info:
    app: guestbook
    objects: false
    rollback_from: "{{ fetch.revision }}"
  register: last_healthy

- name: Show it
  ansible.builtin.debug:
    msg: "{{ last_healthy.rollback_target.revision if last_healthy.rollback_target else last_healthy.rollback_message }}"

- name: Every app whose last sync failed
  gitops.k8s.app_info:
    objects: false
  register: all_apps

- name: List them
  ansible.builtin.debug:
    msg: "{{ all_apps.apps | selectattr('result', 'equalto', 'Failed') | map(attribute='app') | list }}"
"""

RETURN = r"""
record:
  description: The record of O(app), or null when it was never applied.
  returned: when O(app) is set
  type: dict
  contains:
    app:
      description: Application name.
      type: str
    revision:
      description: Revision of the last successful apply.
      type: str
    digest:
      description: Bundle digest of the last successful apply.
      type: str
    result:
      description: Result of the last apply or recorded sync (Succeeded, Failed, Running, or a health verdict).
      type: str
    message:
      description: Why the last apply failed, if it did.
      type: str
    time:
      description: When the record was last written, in seconds since the epoch.
      type: float
    trigger:
      description: push or pull.
      type: str
    objects:
      description: Objects of the app, each {apiVersion, kind, namespace, name, digest, resourceVersion, managed}.
      type: list
      elements: dict
      returned: when O(objects=true)
    object_count:
      description: How many objects the app has.
      type: int
    history:
      description:
        - Newest first, each {revision, digest, time, result, trigger, rollback, rollback_of, message, duration, health,
          health_time}.
        - C(health) is the overall status (C(Healthy), C(Degraded), C(Progressing)...) M(gitops.k8s.health_wait) found
          when it waited after that sync, and C(health_time) when; both are absent when nobody waited.
      type: list
      elements: dict
rollback_target:
  description:
    - The history entry a rollback from O(rollback_from) should go to - the newest recorded C(Healthy) or C(Suspended)
      whose revision is not O(rollback_from) - or null when there is none.
  returned: when O(app) and O(rollback_from) are set
  type: dict
  sample:
    revision: 4f1c2a9d0e8b7c6a5f4e3d2c1b0a99887766554433
    digest: 9b1e0c4d
    time: 1767225600.5
    result: Succeeded
    trigger: push
    rollback: false
    health: Healthy
    health_time: 1767225642.1
rollback_message:
  description: Where the rollback goes, or why there is no revision to roll back to.
  returned: when O(app) and O(rollback_from) are set
  type: str
  sample: no revision of guestbook other than 0a1b2c3 was recorded healthy in its history
apps:
  description: Every record of the namespace (just O(app)'s when set, empty when it has none), sorted by app.
  returned: always
  type: list
  elements: dict
inventory:
  description: Where the records are stored (kind, namespace).
  returned: always
  type: dict
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import Cluster
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import Inventory, rollback_target
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.option_specs import CLUSTER_ARGSPEC, INVENTORY_ARGSPEC

ARGSPEC = dict(
    CLUSTER_ARGSPEC,
    app={"type": "str"},
    objects={"type": "bool", "default": True},
    rollback_from={"type": "str"},
    **INVENTORY_ARGSPEC,
)


def shape(record, with_objects):
    out = dict(record, object_count=len(record.get("objects") or ()))
    if not with_objects:
        out.pop("objects", None)
    return out


def rollback(app, record, failed_revision):
    target = rollback_target((record or {}).get("history"), failed_revision)
    if target:
        message = "the newest revision of %s recorded healthy other than %s is %s (%s)" % (
            app, failed_revision[:7], target["revision"][:7], target["health"])
    else:
        message = ("no revision of %s other than %s was recorded healthy in its history"
                   % (app, failed_revision[:7]))
    return {"rollback_target": target, "rollback_message": message}


def engine(call):
    params = call.params
    store = Inventory(Cluster.from_params(params), params["inventory_namespace"], params["inventory_kind"])
    result = {"changed": False, "inventory": store.where()}
    if params["app"]:
        record = store.read(params["app"])[0]
        result["record"] = shape(record, params["objects"]) if record else None
        result["apps"] = [result["record"]] if record else []
        if params["rollback_from"]:
            result.update(rollback(params["app"], record, params["rollback_from"]))
    else:
        result["apps"] = [shape(r, params["objects"]) for r in store.read_all()]
    return result


def main():
    run_module(ARGSPEC, engine)


if __name__ == "__main__":
    main()
