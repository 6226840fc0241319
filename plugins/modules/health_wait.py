#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: health_wait
short_description: Wait until applied objects are healthy, with a reason for every object that is not
version_added: 0.1.0
description:
  - Watches the objects of an application (O(app)), of a bundle (O(bundle)) or a list (O(resources)) until every one
    is C(Healthy) or C(Suspended), one is C(Degraded) (with O(fail_fast)), or O(timeout) seconds pass.
  - "Each object gets a status: C(Healthy), C(Suspended), C(Progressing), C(Missing), C(Degraded) or C(Unknown), and a
    message saying why. The overall status is the worst one, in that order."
  - "Built-in rules: Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Job, CronJob, PersistentVolumeClaim, Service
    (a LoadBalancer needs an address), Ingress, HorizontalPodAutoscaler, CustomResourceDefinition, APIService,
    Namespace. Any other kind follows the kstatus conventions (C(status.observedGeneration), the C(Ready),
    C(Reconciling) and C(Stalled) conditions); kinds without status (ConfigMap, Secret, RBAC...) are healthy when
    they exist. An object being deleted is C(Progressing). O(custom_health) describes other kinds."
  - Uses watches, not polling - one list and one watch per kind and namespace - so a change is seen within a second.
  - On timeout or C(Degraded) the task fails with a message listing every unhealthy object with its reason, the
    unhealthy pods of unhealthy workloads, and their latest Warning events.
  - "When the task runs with a local connection (the usual case for a cluster host), a progress line is printed while
    waiting, for example C(7/10 healthy - waiting for Deployment shop/web: 1 of 3 updated replicas are available)."
author:
  - gitops.k8s developers (@gitops-k8s)
extends_documentation_fragment:
  - gitops.k8s.cluster
  - gitops.k8s.inventory
attributes:
  check_mode:
    support: full
    description: Reports the current health without waiting, and does not fail on unhealthy objects.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
options:
  app:
    description:
      - Wait for the objects recorded in this application's inventory by M(gitops.k8s.apply), except those an
        application without prune left behind (recorded C(orphaned)).
      - Exactly one of O(app), O(bundle) and O(resources) is required.
    type: str
  bundle:
    description:
      - Wait for the objects of this bundle directory written by M(gitops.k8s.render). Hook objects are skipped
        (M(gitops.k8s.apply) waits for them while it runs them).
    type: path
  resources:
    description:
      - Wait for these objects; each is a reference with C(apiVersion), C(kind), C(name) and, for namespaced kinds,
        C(namespace). Other keys are ignored, so the RV(gitops.k8s.apply#module:resources) of an apply can be passed.
    type: list
    elements: dict
  timeout:
    description: Seconds to wait before failing with the list of objects that are not healthy.
    type: float
    default: 300
  fail_fast:
    description: Stop and fail as soon as an object is C(Degraded), instead of waiting for the others or the timeout.
    type: bool
    default: true
  ignore:
    description:
      - Objects not to wait for. Each item is a kind name (C(Job)) or a partial reference; an object is skipped when
        every given field (C(apiVersion), C(kind), C(namespace), C(name)) is equal.
    type: list
    elements: raw
    default: []
  wait:
    description: When false, report the current health at once and do not fail on unhealthy objects.
    type: bool
    default: true
  custom_health:
    description:
      - Health rules for kinds the built-in rules do not know (or to override one), as JMESPath expressions over
        the whole object - the language of the C(json_query) filter.
      - An expression matches when its result is not null, false or empty. They are tried in the order C(degraded),
        C(suspended), C(healthy), C(progressing); the first match decides. When none matches the object is
        C(Progressing), or C(Unknown) if the rule has a C(progressing) expression.
      - "A rule has: C(kind) (required); C(group), the API group (empty for the core group; omit to match every group);
        C(healthy), C(degraded), C(progressing), C(suspended): expressions (at least one); C(message): an expression
        for the message."
    type: list
    elements: dict
    default: []
  record:
    description:
      - With O(app), write the verdict (the overall RV(status) and the time) into the application's newest history
        entry, as C(health) and C(health_time) - what a rollback looks for to find the last C(Healthy) revision (see
        M(gitops.k8s.app_info)).
      - Only a real wait is recorded - never with O(wait=false) nor in check mode - and only when the newest history
        entry is the sync the cluster runs (the last apply succeeded) and is still the newest when the wait ends.
      - The write uses the inventory's optimistic concurrency, like M(gitops.k8s.apply); it does not count as a change.
    type: bool
    default: true
notes:
  - C(Suspended) objects (paused Deployment, suspended Job or CronJob, autoscaler with scaling disabled) count as
    healthy - waiting would not change them.
  - Requires the C(kubernetes) Python library, and C(jmespath) when O(custom_health) is used.
seealso:
  - module: gitops.k8s.apply
  - module: gitops.k8s.render
"""

EXAMPLES = r"""
- name: Wait for the app applied by gitops.k8s.apply
  gitops.k8s.health_wait:
    app: guestbook
    timeout: 600

- name: Wait for a bundle, with a rule for a CRD and without waiting for the Jobs
  gitops.k8s.health_wait:
    bundle: "{{ render.bundle }}"
    ignore: [Job]
    custom_health:
      - group: postgresql.cnpg.io
        kind: Cluster
        healthy: "status.phase == 'Cluster in healthy state'"
        degraded: "contains(status.phase || '', 'failed')"
        message: status.phase

- name: Wait without recording the verdict in the history (for example a check run by a monitoring job)
  gitops.k8s.health_wait:
    app: guestbook
    record: false

- name: What is the health right now?
  gitops.k8s.health_wait:
    resources:
      - {apiVersion: apps/v1, kind: Deployment, namespace: shop, name: web}
    wait: false
  register: health

- name: Show the unhealthy objects
  ansible.builtin.debug:
    msg: "{{ health.resources | rejectattr('status', 'equalto', 'Healthy') | list }}"
"""

RETURN = r"""
changed:
  description: Always false; waiting changes nothing (recording the verdict in the history is bookkeeping, not a change).
  returned: always
  type: bool
healthy:
  description: Whether every object is C(Healthy) or C(Suspended).
  returned: always
  type: bool
status:
  description: The overall status, the worst of all objects (C(Healthy) < C(Suspended) < C(Progressing) < C(Missing) < C(Degraded) < C(Unknown)).
  returned: always
  type: str
  sample: Progressing
resources:
  description: Every object waited for, in the given order, with its status and the reason.
  returned: always
  type: list
  elements: dict
  contains:
    ref:
      description: The object, as C(apiVersion), C(kind), C(namespace) (empty for cluster-scoped kinds) and C(name).
      type: dict
    status:
      description: The object's status.
      type: str
    message:
      description: Why it has that status.
      type: str
  sample:
    - ref: {apiVersion: apps/v1, kind: Deployment, namespace: shop, name: web}
      status: Progressing
      message: 1 of 3 updated replicas are available
elapsed:
  description: Seconds spent.
  returned: always
  type: float
timeline:
  description: When each healthy object became healthy, in seconds after the start, earliest first.
  returned: always
  type: list
  elements: dict
  contains:
    ref:
      description: The object.
      type: dict
    healthy_after:
      description: Seconds after the start.
      type: float
summary:
  description:
    - "One text: every object that is not healthy as C(Kind namespace/name: reason) and its status in parentheses, with the unhealthy pods
      of unhealthy workloads and their latest Warning events; or how many objects are healthy. It is also the failure
      message."
  returned: always
  type: str
recorded:
  description:
    - The history entry of O(app) that received the verdict (see O(record)), with its new C(health) and
      C(health_time) fields.
    - Null when nothing was recorded (no O(app), O(record=false), O(wait=false), check mode, the last apply of the
      application failed, or a newer sync replaced the entry while waiting).
  returned: always
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
api_requests:
  description: Requests sent to the API server (lists, watches, discovery, events).
  returned: always
  type: int
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.health_wait_task import run_health_wait
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.option_specs import HEALTH_WAIT_ARGSPEC, HEALTH_WAIT_RULES


def main():
    run_module(HEALTH_WAIT_ARGSPEC, run_health_wait, **HEALTH_WAIT_RULES)


if __name__ == "__main__":
    main()
