#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: apply
short_description: Apply a bundle with server-side apply - validated first, in waves, with hooks, prune and history
version_added: 0.1.0
description:
  - Applies a bundle written by M(gitops.k8s.render) as one application, in this order.
  - 1. Takes a C(coordination.k8s.io) Lease for the app (O(lock)); another run on the same app waits up to
    O(lock_timeout) and then fails naming the holder. The lease of a run that crashed expires after 30 seconds.
  - 2. Creates the namespaces the bundle's objects live in that exist neither in the cluster nor in the bundle
    (O(create_namespaces), with O(managed_namespace_metadata)), first and on their own, so that every object is
    validated in its real namespace (quotas, limit ranges, Pod Security, namespace-scoped webhooks).
  - 3. Validates the whole bundle with a server-side dry-run before the first write. When the server rejects any
    object (schema, admission, immutable field, unknown kind, field conflict without O(force_conflicts)), the module
    fails listing every rejected object with the server's message and its source file, and changes nothing else.
    A request that never reached the server (timeout, connection refused) is reported as such, not as a rejection.
  - 4. Runs the PreSync hooks and waits for them, then applies the waves in order - within a wave Namespaces and
    CustomResourceDefinitions first (waiting until the CRDs are Established, then dry-running the bundle's custom
    resources of those CRDs before anything else of their wave is written), then every other object concurrently,
    then the wave's Sync hooks (in their wave, as Argo CD runs them); with O(wait_waves) each wave must be healthy
    (same rules as M(gitops.k8s.health_wait)) before the next starts; then the PostSync hooks. When a step fails the
    SyncFail hooks run.
  - "Takeover: an object created with client-side C(kubectl apply) has its fields owned by the
    C(kubectl-client-side-apply) (or C(before-first-apply)) field manager. Before its first write those fields move to
    O(field_manager) and the C(kubectl.kubernetes.io/last-applied-configuration) annotation is dropped, so a field
    later deleted from Git is deleted from the cluster (as C(kubectl), Flux and Argo CD do)."
  - "Per-object sync options, from the annotation C(gitops.k8s/sync-options) (or C(argocd.argoproj.io/sync-options),
    C(harnesscd.harnessproj.io/sync-options)), comma-separated: C(Replace=true) writes the object with a replace
    (PUT, a create when absent) instead of a server-side apply, so fields other managers added are dropped;
    C(Force=true) deletes and recreates the object when the server refuses a change of an immutable field (a Job's
    template, a Deployment's selector, a Service's clusterIP), as O(replace_on_immutable) does for every object;
    C(Prune=false) keeps the object out of prune. Without them an immutable-field change fails validation naming the
    field and these options."
  - The scope of every kind comes from discovery - a cluster-scoped object never carries a namespace in the
    inventory, whatever the bundle says.
  - Hook objects (C(argocd.argoproj.io/hook) / C(gitops.k8s/hook) annotations, see M(gitops.k8s.render)) with
    C(generateName) are created, the others applied. Delete policies C(BeforeHookCreation) (the default),
    C(HookSucceeded) and C(HookFailed) are honoured. Hooks are not recorded in the inventory.
  - 5. With O(prune), deletes the objects of the previous inventory that are no longer in the bundle, in reverse order,
    except those annotated C(gitops.k8s/prune=disabled) or C(argocd.argoproj.io/sync-options=Prune=false).
    Objects that fail to delete stay in the inventory. Without O(prune) they stay in the cluster and in the inventory
    marked C(orphaned) (RV(orphaned)); they are not waited for by M(gitops.k8s.health_wait). Objects of a kind the
    cluster no longer serves (a removed CRD version, an aggregated API that is down) stay recorded and are reported
    in RV(unserved), never taken for deleted.
  - 6. Records the inventory in the cluster - a ConfigMap (or Secret) C(gitops-app-<app>) in O(inventory_namespace),
    created when absent - with the objects (applied digest and resourceVersion), revision, bundle digest, time,
    result and the last O(history_limit) syncs. The union of old and new objects is recorded before the first write
    and the final set after prune, so a crash never loses track of an object.
  - 7. An object recorded in another app's inventory is not taken over unless O(adopt=true); the error names that app.
  - A plan with nothing to create, update or prune changes nothing - no hook runs, no wave is waited for - and costs
    one LIST per kind and namespace, or one GET per object of a kind it has at most 4 of there (the fast path of
    M(gitops.k8s.diff)).
author:
  - gitops.k8s developers (@gitops-k8s)
extends_documentation_fragment:
  - gitops.k8s.cluster
  - gitops.k8s.inventory
  - gitops.k8s.ignore_differences
attributes:
  check_mode:
    support: full
    description: A full server-side dry-run of everything, prune included; nothing is written, not even the inventory or the lease.
  diff_mode:
    support: full
    description: Returns the same diff as M(gitops.k8s.diff), before/after per object, Secret values masked.
options:
  bundle:
    description: Directory of the bundle (C(manifest.yaml) and C(index.json)) written by M(gitops.k8s.render).
    type: path
    required: true
  app:
    description: Name of the application - the key of its inventory record and of its lock.
    type: str
    required: true
  revision:
    description: Revision recorded in the inventory and its history (usually the Git commit). Defaults to the bundle's.
    type: str
  trigger:
    description: What started this sync, recorded in the history.
    type: str
    choices: [push, pull]
    default: push
  rollback_of:
    description: When this sync rolls back a failed revision, that revision; the history entry is marked C(rollback=true).
    type: str
  field_manager:
    description: Field manager of the server-side apply.
    type: str
    default: gitops.k8s
  force_conflicts:
    description: Take ownership of fields another field manager set (undoes drift made with C(kubectl edit) and the like).
    type: bool
    default: true
  prune:
    description: Delete the objects of the app's previous inventory that are no longer in the bundle.
    type: bool
    default: false
  prune_allow_empty:
    description: Allow prune to delete every object of the app when the bundle is empty (refused by default).
    type: bool
    default: false
  prune_propagation:
    description: How the dependents of pruned objects are deleted.
    type: str
    choices: [background, foreground, orphan]
    default: background
  create_namespaces:
    description:
      - Create the namespaces the bundle's objects live in when they exist neither in the cluster nor in the bundle,
        before validation (Argo CD's C(CreateNamespace=true)). When false such a bundle fails naming the namespaces.
      - In check mode nothing is created; those objects are validated by a dry-run create in the C(default) namespace.
    type: bool
    default: true
  managed_namespace_metadata:
    description:
      - Labels and annotations given to the namespaces O(create_namespaces) creates (Argo CD's
        C(managedNamespaceMetadata)), for example Pod Security levels; they apply before anything is validated there.
    type: dict
    suboptions:
      labels:
        description: Labels of the namespace.
        type: dict
      annotations:
        description: Annotations of the namespace.
        type: dict
  replace_on_immutable:
    description:
      - Delete and recreate any object whose change the server refuses because a field is immutable, as the
        C(Force=true) sync option does for one object. The recreate is validated by a dry-run create first.
      - Never for PersistentVolumeClaims, PersistentVolumes, Namespaces and CustomResourceDefinitions - recreating them
        deletes the data or objects they hold; only their own C(Force=true) annotation allows it.
    type: bool
    default: false
  concurrency:
    description: How many objects are dry-run or applied at the same time.
    type: int
    default: 8
  wait_waves:
    description:
      - Wait until each wave is healthy before the next one (and before the PostSync hooks).
      - Defaults to true when the bundle has more than one wave or any hook.
    type: bool
  timeout:
    description: Seconds to wait for each wave, hook phase or CRD to become healthy / established.
    type: int
    default: 300
  custom_health:
    description: Health rules for custom resources, as in M(gitops.k8s.health_wait), used by O(wait_waves) and hooks.
    type: list
    elements: dict
  lock:
    description: Take the app's Lease so that two runs never apply the same app at once.
    type: bool
    default: true
  lock_timeout:
    description: Seconds to wait for another run's lease before failing.
    type: int
    default: 60
  history_limit:
    description: How many syncs the inventory's history keeps.
    type: int
    default: 10
  adopt:
    description: Take over objects recorded in another app's inventory (they are removed from that app's inventory).
    type: bool
    default: false
  show_secrets:
    description: Show Secret values in clear in the diff mode output.
    type: bool
    default: false
notes:
  - Objects whose kind a CustomResourceDefinition of the same bundle defines are validated once that CRD is
    Established, before anything else of their wave is written; in check mode they cannot be, and are listed in
    RV(unvalidated).
seealso:
  - module: gitops.k8s.diff
  - module: gitops.k8s.app_info
  - module: gitops.k8s.health_wait
"""

EXAMPLES = r"""
- name: Apply the rendered commit and prune what was removed from Git
  gitops.k8s.apply:
    bundle: "{{ render.bundle }}"
    app: guestbook
    revision: "{{ fetch.sha }}"
    prune: true
    trigger: push
  register: applied

- name: Roll back to the last healthy revision
  gitops.k8s.apply:
    bundle: "{{ previous_render.bundle }}"
    app: guestbook
    revision: "{{ last_healthy }}"
    rollback_of: "{{ fetch.sha }}"
    prune: true
"""

RETURN = r"""
changed:
  description:
    - Whether any object was created, updated or pruned (would be, in check mode), or a namespace created.
    - Also on failure - true when anything was written before the run failed.
  returned: always
  type: bool
created:
  description: References (apiVersion, kind, namespace, name) of the objects created.
  returned: always
  type: list
  elements: dict
configured:
  description: References of the objects updated.
  returned: always
  type: list
  elements: dict
unchanged:
  description: References of the objects already as desired.
  returned: always
  type: list
  elements: dict
pruned:
  description: References of the objects deleted by prune (in check mode, that prune would delete).
  returned: always
  type: list
  elements: dict
prune_failed:
  description:
    - Objects prune could not delete, with the server's C(message), or whose deletion a finalizer still holds a
      few seconds later (the message names the finalizers). They stay in the inventory and the run fails, so the
      next run tries again.
  returned: always
  type: list
  elements: dict
prune_refused:
  description:
    - Objects prune did not delete, with the reason in C(message) (see the prune guards in docs/diff_and_apply.md).
      An object deleted and recreated by someone else since it was applied (another uid) is not this app's any
      more and leaves the inventory. A Namespace or CustomResourceDefinition is pruned only when annotated
      C(gitops.k8s/prune=allow), never while other apps' objects live in it (or are of its kind), and the
      inventory namespace never; those stay in the inventory.
  returned: always
  type: list
  elements: dict
prune_skipped:
  description: Objects no longer in the bundle left in place (prune off, or prune disabled by annotation).
  returned: always
  type: list
  elements: dict
orphaned:
  description: Without O(prune), the objects no longer in the bundle left in the cluster (recorded C(orphaned)).
  returned: always
  type: list
  elements: dict
unserved:
  description: Recorded objects whose kind the cluster serves at no version; kept on record, not pruned.
  returned: always
  type: list
  elements: dict
recreated:
  description: Objects deleted and created again (C(Force=true) or O(replace_on_immutable) on an immutable field).
  returned: always
  type: list
  elements: dict
namespaces_created:
  description: Namespaces created by O(create_namespaces).
  returned: always
  type: list
  elements: str
hooks:
  description: Every hook run, in order.
  returned: always
  type: list
  elements: dict
  contains:
    phase:
      description: PreSync, Sync, PostSync or SyncFail.
      type: str
    name:
      description: Name of the hook object (the generated one for C(generateName)).
      type: str
    status:
      description: Health of the hook when it settled (Healthy for a completed Job, Degraded for a failed one).
      type: str
    message:
      description: Why it has that status.
      type: str
    deleted:
      description: Whether a delete policy removed it afterwards.
      type: bool
unvalidated:
  description: Objects not dry-run before the first write because a CRD of the bundle defines their kind.
  returned: always
  type: list
  elements: dict
summary:
  description: Counts - create, update, unchanged, and delete (objects pruned).
  returned: always
  type: dict
revision:
  description: The revision recorded.
  returned: always
  type: str
digest:
  description: Digest of the bundle applied.
  returned: always
  type: str
inventory:
  description: Where the inventory record is stored (kind, namespace, name).
  returned: always
  type: dict
  sample: {kind: ConfigMap, namespace: gitops-system, name: gitops-app-guestbook}
fast_path:
  description: How many objects were known unchanged without a dry-run (see M(gitops.k8s.diff)).
  returned: always
  type: int
api_requests:
  description: How many requests the module made to the API server.
  returned: always
  type: int
api_retries:
  description:
    - How many requests were sent again after a throttling answer (429, honouring C(Retry-After)), a server
      error (5xx) or a lost connection, with bounded, jittered back-off. Only requests that are safe to repeat
      are retried (reads, server-side apply, replace with a resourceVersion, delete); a create is retried only
      when the server did not act on it.
  returned: always
  type: int
  sample: 0
duration:
  description: Seconds the apply took.
  returned: always
  type: float
resources:
  description: In diff mode, what M(gitops.k8s.diff) returns in its C(resources) - one unified diff per changed object.
  returned: in diff mode
  type: list
  elements: dict
rejected:
  description: On validation failure, every rejected object with its C(source) file and the server's C(message).
  returned: failure
  type: list
  elements: dict
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.apply_task import ARGSPEC, run_apply


def main():
    run_module(ARGSPEC, run_apply)


if __name__ == "__main__":
    main()
