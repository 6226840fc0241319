#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: diff
short_description: Show what applying a bundle would change in the cluster, with Secret values masked
version_added: 0.1.0
description:
  - Compares a bundle written by M(gitops.k8s.render) with the cluster the way M(gitops.k8s.apply) would apply it -
    a server-side dry-run apply of each object with the same field manager, compared with the live object after
    normalisation (status, managedFields, resourceVersion, generation, uid, creationTimestamp and the
    C(kubectl.kubernetes.io/last-applied-configuration) annotation dropped; O(ignore_differences) removed from both
    sides). Defaults the API server fills in are therefore never reported as drift.
  - Objects absent from the cluster are C(create). With O(app), objects recorded in that app's inventory but no
    longer in the bundle are C(delete) - what O(gitops.k8s.apply#module:prune=true) would remove - except those
    annotated C(gitops.k8s/prune=disabled) or C(argocd.argoproj.io/sync-options=Prune=false), returned in RV(kept).
    With O(prune=false) they are not a difference at all but listed in RV(orphaned).
  - An object whose fields the client-side C(kubectl apply) manager owns is C(update) (its fields move to
    O(field_manager) on apply, see M(gitops.k8s.apply)); its diff says so. The sync options C(Replace=true) and
    C(Force=true) (see M(gitops.k8s.apply)) are dry-run as apply will write them (RV(resources[].method)); an
    immutable-field change without them is an error that names the field and the option that fixes it.
  - "Fast path: with O(app), one LIST per kind and namespace (one GET per object for a kind the bundle and the inventory
    name at most 4 objects of there) tells which live objects are still exactly what the
    last apply wrote (same desired digest, and same resourceVersion or same field set owned by O(field_manager));
    only the others get a dry-run. A no-op diff of 1,000 objects costs a handful of requests (see RV(api_requests))."
  - Secret C(data) and C(stringData) values are masked in every returned field - a changed value reads
    C(*** (old value)) / C(*** (new value)), an unchanged one C(*** (unchanged)) - unless O(show_secrets=true).
  - Hook objects of the bundle (PreSync, PostSync...) are not compared; they are created anew by every sync.
author:
  - gitops.k8s developers (@gitops-k8s)
extends_documentation_fragment:
  - gitops.k8s.cluster
  - gitops.k8s.inventory
  - gitops.k8s.ignore_differences
attributes:
  check_mode:
    support: full
    description: The module never changes anything; it runs the same in check mode.
  diff_mode:
    support: full
    description: Returns the before/after of every object that would change, as C(ansible-playbook --diff) shows it.
options:
  bundle:
    description: Directory of the bundle (C(manifest.yaml) and C(index.json)) written by M(gitops.k8s.render).
    type: path
    required: true
  app:
    description:
      - Name of the application, the key of its inventory record. Enables the fast path and the C(delete) entries.
      - Without it every live object gets a dry-run and nothing is reported for deletion.
    type: str
  field_manager:
    description: Field manager of the dry-run apply; use the one M(gitops.k8s.apply) uses.
    type: str
    default: gitops.k8s
  show_secrets:
    description: Show Secret values in clear in the diffs. Leave off anywhere the output is logged.
    type: bool
    default: false
  concurrency:
    description: How many dry-runs and LISTs run at the same time.
    type: int
    default: 8
  prune:
    description:
      - Whether the application prunes. When false, recorded objects no longer in the bundle are C(orphaned) - listed in
        RV(orphaned), not reported as C(delete) and not making the result C(changed).
    type: bool
    default: true
  replace_on_immutable:
    description: Compare as M(gitops.k8s.apply) with O(gitops.k8s.apply#module:replace_on_immutable=true) would write.
    type: bool
    default: false
notes:
  - Objects whose kind a CustomResourceDefinition of the same bundle defines cannot be dry-run before that CRD exists;
    they are reported as C(create) and listed in RV(unvalidated).
  - A cluster-scoped object never carries a namespace in the comparison, whatever the bundle says (scope comes from
    discovery).
seealso:
  - module: gitops.k8s.apply
  - module: gitops.k8s.render
"""

EXAMPLES = r"""
- name: What would the next sync change?
  gitops.k8s.diff:
    bundle: "{{ render.bundle }}"
    app: guestbook
    ignore_differences:
      - group: apps
        kind: Deployment
        json_pointers: [/spec/replicas]   # the HPA owns it
  register: drift

- name: Fail the pipeline when the cluster drifted
  ansible.builtin.assert:
    that: not drift.changed
    fail_msg: "{{ drift.resources | map(attribute='diff') | join('\n') }}"
"""

RETURN = r"""
changed:
  description: Whether the cluster is out of sync with the bundle (something would be created, updated or deleted).
  returned: always
  type: bool
summary:
  description: How many objects would be created, updated, deleted, and how many are unchanged.
  returned: always
  type: dict
  sample: {create: 1, update: 2, delete: 0, unchanged: 997}
resources:
  description: Every object that would change, in bundle order (deletions last).
  returned: always
  type: list
  elements: dict
  contains:
    apiVersion:
      description: API version of the object.
      type: str
    kind:
      description: Kind of the object.
      type: str
    namespace:
      description: Namespace of the object (empty for cluster-scoped objects).
      type: str
    name:
      description: Name of the object.
      type: str
    action:
      description: What applying the bundle would do.
      type: str
      choices: [create, update, delete]
    diff:
      description: Unified diff of the normalised live object (C(-)) and the desired one (C(+)), Secret values masked.
      type: str
    source:
      description: File of the repository the object was rendered from (not for deletions).
      type: str
      returned: when known
    method:
      description: How apply would write an updated object other than by server-side apply.
      type: str
      choices: [replace, recreate]
      returned: when not a server-side apply
unvalidated:
  description: Objects that could not be dry-run because a CRD of the bundle defines their kind and does not exist yet.
  returned: always
  type: list
  elements: dict
kept:
  description: Objects of the inventory no longer in the bundle that prune would keep (prune disabled by annotation).
  returned: always
  type: list
  elements: dict
orphaned:
  description: With O(prune=false), the objects of the inventory no longer in the bundle that stay in the cluster.
  returned: always
  type: list
  elements: dict
unserved:
  description: Objects of the inventory whose kind the cluster serves at no version (kept on record, never pruned).
  returned: always
  type: list
  elements: dict
fast_path:
  description: How many objects were found unchanged from the inventory and the LISTs alone, without a dry-run.
  returned: always
  type: int
api_requests:
  description: How many requests the module made to the API server.
  returned: always
  type: int
  sample: 4
api_retries:
  description:
    - How many requests were sent again after a throttling answer (429, honouring C(Retry-After)), a server
      error (5xx) or a lost connection, with bounded, jittered back-off. Only requests that are safe to repeat
      are retried (reads, server-side apply, replace with a resourceVersion, delete); a create is retried only
      when the server did not act on it.
  returned: always
  type: int
  sample: 0
diff:
  description: In diff mode, one before/after per object that would change, as C(ansible-playbook --diff) prints it.
  returned: in diff mode
  type: list
  elements: dict
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.diff_task import ARGSPEC, run_diff


def main():
    run_module(ARGSPEC, run_diff)


if __name__ == "__main__":
    main()
