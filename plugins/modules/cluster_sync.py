#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_sync
short_description: Converge every application of one cluster in one process - the engine of the push and reconcile playbooks
version_added: 0.2.0
description:
  - Takes the applications of one cluster (the O(apps) list, C(gitops_apps)) and converges them in one process, which
    is what the C(gitops.k8s.push) and C(gitops.k8s.reconcile) playbooks and the C(gitops.k8s.sync) role run, once per
    cluster host.
  - Each repository is listed and fetched once per run however many applications use it, and each commit is checked
    out once into its own read-only directory (C(~/.cache/gitops-k8s/checkouts/<sha>)), so applications of one
    repository at different versions never render each other's commit.
  - Each distinct (commit, path, namespace, render options) is rendered once, as M(gitops.k8s.render) does. A
    directory of plain manifests is remembered across runs on the controller, keyed by commit, path, options and the
    rendering code, so a later run loads that bundle instead of parsing the files again.
  - The cluster is read once - discovery, every inventory record with one LIST, and one LIST per kind for all
    applications (one GET per object of a kind the run names at most 4 objects of) - and every application is
    compared from that read. An application whose revision, bundle and live objects are unchanged costs no further
    request; its health is read from the same read.
  - "O(mode=push): every selected application is delivered at its version (or O(revision)): applied unless it
    provably is already there. O(mode=reconcile): a new commit is applied, drift is reported and, with the app's
    C(self_heal), undone; a revision that was rolled back before waits for a new commit."
  - Applications with work are converged dependency level after level (C(depends_on)), the applications of one level
    concurrently (O(concurrency)). For each one the app's Lease is taken, the decision is checked again under it (an
    application that another run moved meanwhile is left as it is, said C(superseded)), then it is applied
    (M(gitops.k8s.apply)), waited for (M(gitops.k8s.health_wait)) with the verdict recorded in its history and, with
    C(rollback), rolled back to the newest revision recorded healthy when it fails.
  - One application's failure never stops the others; applications that depend on it are skipped. The task itself
    fails only when O(apps) is invalid; the playbooks fail at the end, after the report, naming every failed app.
  - "When the task runs with a local connection (how cluster hosts are reached) one line per application is printed
    as it finishes, for example C(web@prod: SYNCED, HEALTHY, synced at 3f2a9c1 (Scale web))."
author:
  - gitops.k8s developers (@gitops-k8s)
extends_documentation_fragment:
  - gitops.k8s.cluster
  - gitops.k8s.inventory
attributes:
  check_mode:
    support: full
    description: Fetches and renders (on the controller) and reports what would change; nothing is written to the cluster.
  diff_mode:
    support: full
    description: Shows the per-object diff (Secret values masked) of every application that would change.
options:
  apps:
    description:
      - The applications of this cluster, as documented in C(docs/applications.md) - one mapping each, with the keys
        below.
      - Invalid applications (unknown key, wrong type, unknown dependency, dependency cycle) fail the task before
        anything runs.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Application name (lowercase letters, digits and '-'); names its in-cluster record.
        type: raw
      repo:
        description: Git repository URL or local path; optional with O(apps[].helm.repo) (then it holds the values files).
        type: raw
      version:
        description: Branch, tag, semver range or commit sha. Default is the remote's HEAD.
        type: raw
      path:
        description: Directory of the manifests in the repository (default C(.)).
        type: raw
      render:
        description: Options of M(gitops.k8s.render) (C(type), C(values_files), C(values), C(release_name), C(substitute)...).
        type: raw
      namespace:
        description: Namespace given to namespaced objects that have none (and the Helm release namespace).
        type: raw
      prune:
        description: Delete objects of the application that are no longer in Git (default false).
        type: raw
      self_heal:
        description: In reconcile, undo drift by applying Git's state again (default false).
        type: raw
      rollback:
        description: Apply the newest revision recorded healthy again when apply or the health wait fails (default false).
        type: raw
      wait:
        description: Health wait after apply - C(timeout) (seconds, default 300), C(enabled), C(fail_fast).
        type: raw
      ignore_differences:
        description:
          - Fields Git does not decide (not compared, not sent by apply) - a list of rules, each with C(kind),
            optionally C(group), C(name) and C(namespace), and at least one of C(json_pointers), C(jq_path_expressions)
            (Argo CD's C(jqPathExpressions)) and C(managed_fields_managers), as the
            O(gitops.k8s.diff#module:ignore_differences) option takes them.
        type: raw
      custom_health:
        description: JMESPath health rules for custom resources, as in M(gitops.k8s.health_wait).
        type: raw
      depends_on:
        description: Names of applications synced and healthy first.
        type: raw
      suspend:
        description: Skip this application and report it as suspended (default false).
        type: raw
      state:
        description: C(absent) removes the application (default C(present)).
        type: raw
      managed_namespace_metadata:
        description: C(labels) and C(annotations) given to the application's namespace.
        type: raw
      replace_on_immutable:
        description: Delete and recreate an object whose change an immutable field refuses (default false).
        type: raw
      create_namespace:
        description: Create the namespaces the application's objects live in when missing (default true).
        type: raw
      credentials:
        description: Git credentials of C(repo). Without them, the O(credentials) entry that matches the URL fetched.
        type: dict
        suboptions:
          username:
            description: HTTPS user name.
            type: str
          password:
            description: HTTPS password or token. Never printed.
            type: str
          key_file:
            description: SSH private key file.
            type: str
          known_hosts:
            description: SSH known_hosts file.
            type: str
          accept_hostkey:
            description: Accept an unknown SSH host key.
            type: bool
          ca_file:
            description: CA certificates (PEM) of an HTTPS Git server with a private CA.
            type: str
      project:
        description:
          - The project (an entry of O(projects)) the application belongs to; default the project named C(default) when
            O(projects) defines one. Its C(decryption) keys are the application's too. Naming a project O(projects)
            does not define fails the application.
          - The project bounds what the application may deploy (O(projects)) - checked on the rendered bundle before
            any request for it; an object outside it fails the application at step C(policy), naming the file, the
            object and the rule, and nothing of it is applied.
        type: raw
      service_account:
        description:
          - "C(<namespace>/<name>): the ServiceAccount every request made for the application acts as (Kubernetes
            impersonation of C(system:serviceaccount:<namespace>:<name>)) - the reads of its objects, the validation
            dry-run, apply, prune deletes, hooks, health waits and rollback. Discovery, the records and the Leases stay
            with the run's own identity."
          - It must live in one of the destinations of the application's project. Default is the ServiceAccount its
            project's C(service_accounts) names for its namespace, else none - the run's own identity, which
            O(require_identity) refuses.
          - See C(docs/teams-and-least-privilege.md).
        type: raw
      decryption:
        description:
          - The keys that decrypt the SOPS- and Ansible Vault-encrypted files of the application's repository at render
            (see M(gitops.k8s.render) and C(docs/secrets.md)). The application decrypts with these and its project's
            keys, and no other - never the controller's own keys, never another project's. A file encrypted for other
            keys fails the application at render, naming the file and the keys it was encrypted for; nothing of it is
            applied, and the other applications go on.
          - Give keys from Ansible Vault-encrypted variables or the job's environment (C(lookup('env', ...))); they
            are C(no_log), never in results, diffs, the report or the render memo.
        type: dict
        suboptions:
          age_keys:
            description: age identities (C(AGE-SECRET-KEY-1...)); a string or a list.
            type: raw
          gpg_keys:
            description: ASCII-armored PGP private keys without passphrase; a string or a list. Needs C(gpg).
            type: raw
          vault:
            description: Ansible Vault passwords - a password, or a list of passwords or C({id, password}).
            type: raw
          vault_ids:
            description:
              - Vault ids of the play's own vault secrets (C(--vault-id prod@...), AWX vault credentials; C(default)
                for C(--vault-password-file) or C(--ask-vault-pass)) that this application may use. The play's secrets
                are given to no application that does not name them. Only when the task runs in the controller's
                worker (a local connection, as the playbooks run it); a module process has no play secrets.
            type: list
            elements: str
      windows:
        description:
          - Deployment windows of this application, added to O(windows) (the same rules, see there).
        type: raw
      promote_after:
        description:
          - "A promotion gate: C({cluster: staging, healthy_for: 3600}) - in O(mode=reconcile), a revision is applied
            only once it was recorded healthy for C(healthy_for) (seconds or C(1h30m)) on the application of the same
            name of cluster host C(cluster), read from that host's in-cluster history (O(promotion_clusters)). Until
            then the application is C(held) (C(waiting for staging: healthy for 12 of 60 minutes)). Replaces
            O(promote_after) for this application. A push is not held by a gate."
        type: raw
      helm:
        description: A chart from a Helm repository or OCI registry, as the O(gitops.k8s.render#module:helm) option.
        type: dict
        suboptions:
          repo:
            description: C(oci://host/path) or the https URL of a chart repository.
            type: str
          chart:
            description: The chart's name.
            type: str
          version:
            description: A version or a semver range; the newest matching is used.
            type: str
          username:
            description: User name for the repository or registry.
            type: str
          password:
            description: Password or token for the repository or registry. Never printed.
            type: str
          ca_file:
            description: CA certificates (PEM) of the repository or registry.
            type: path
          plain_http:
            description: Plain HTTP to the OCI registry. Default is TLS.
            type: bool
          repositories:
            description: Credentials for the repositories the chart's dependencies name, by URL.
            type: list
            elements: dict
            suboptions:
              url:
                description: The repository URL as C(Chart.yaml) names it.
                type: str
              username:
                description: User name.
                type: str
              password:
                description: Password or token. Never printed.
                type: str
              ca_file:
                description: CA certificates (PEM) of the repository.
                type: path
              plain_http:
                description: Plain HTTP to an OCI registry. Default is TLS.
                type: bool
  mirrors:
    description:
      - Where the applications' sources are fetched from (the playbooks pass C(gitops_mirrors)) - C(prefix) and
        C(replace). An application's C(repo) or C(helm.repo) that starts with C(prefix) is fetched from C(replace)
        followed by the rest of the URL; the longest prefix wins, and a URL is rewritten once. Results say each URL
        a mirror rewrote (C(mirrored) in RV(results)).
    type: list
    elements: dict
    default: []
    suboptions:
      prefix:
        description: The start of the URLs this mirror serves, for example C(https://github.com/).
        type: str
        required: true
      replace:
        description: What C(prefix) becomes, for example C(https://git.internal.example/github/).
        type: str
        required: true
  credentials:
    description:
      - Credentials by URL prefix (the playbooks pass C(gitops_credentials)), for each application that gives none of
        its own - O(apps[].credentials) for its C(repo), C(username), C(password) or C(ca_file) in its C(helm). The
        entry whose C(url) is the longest prefix of the URL fetched, after O(mirrors), is used, so a mirror gets its
        own credentials.
    type: list
    elements: dict
    default: []
    suboptions:
      url:
        description: The start of the URLs these credentials are for.
        type: str
        required: true
      username:
        description: HTTPS user name (Git, chart repository or registry).
        type: str
      password:
        description: HTTPS password or token. Never printed.
        type: str
      key_file:
        description: SSH private key file (Git).
        type: str
      known_hosts:
        description: SSH known_hosts file (Git).
        type: str
      accept_hostkey:
        description: Accept an unknown SSH host key (Git).
        type: bool
      ca_file:
        description: CA certificates (PEM) of the server.
        type: str
  projects:
    description:
      - The projects of this cluster (the playbooks pass C(gitops_projects)), each a mapping with a C(name). An
        application is in the project its O(apps[].project) names, else in C(default) when defined.
      - C(decryption) (the keys of O(apps[].decryption)) gives the project's applications its keys; the other keys
        (C(source_repos), C(destinations), C(cluster_resources), C(cluster_resources_deny), C(namespace_resources),
        C(namespace_resources_deny), C(service_accounts)) are the project's policy - which repositories, namespaces
        and kinds its applications may deploy and which ServiceAccount each acts as - checked on each application's
        rendered bundle (and the objects its record claims) before any request for it. An application outside it fails
        at step C(policy) naming the file, the object and the rule; nothing of it is applied, the others go on. See
        C(docs/teams-and-least-privilege.md).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The project's name (lowercase letters, digits and '-').
        type: str
        required: true
      description:
        description: What the project is for.
        type: raw
      decryption:
        description: The keys of the project's applications, as O(apps[].decryption).
        type: dict
        suboptions:
          age_keys:
            description: age identities (C(AGE-SECRET-KEY-1...)); a string or a list.
            type: raw
          gpg_keys:
            description: ASCII-armored PGP private keys without passphrase; a string or a list.
            type: raw
          vault:
            description: Ansible Vault passwords - a password, or a list of passwords or C({id, password}).
            type: raw
          vault_ids:
            description: Vault ids of the play's own vault secrets the project's applications may use.
            type: list
            elements: str
      source_repos:
        description: Globs on the repository URLs the project's applications may use (project policy).
        type: raw
      destinations:
        description: Globs on the namespaces the project's applications may deploy to (project policy).
        type: raw
      cluster_resources:
        description: Cluster-scoped kinds (C({group, kind, name?})) the project's applications may deploy (project policy).
        type: raw
      cluster_resources_deny:
        description: Cluster-scoped kinds refused even when allowed (project policy).
        type: raw
      namespace_resources:
        description: Namespaced kinds (C({group, kind})) the project's applications may deploy; default every kind.
        type: raw
      namespace_resources_deny:
        description: Namespaced kinds refused even when allowed (project policy).
        type: raw
      service_accounts:
        description: C({namespace, service_account}) rules - the identity of an application by its namespace.
        type: raw
  require_identity:
    description:
      - Refuse every application that has no identity of its own (O(apps[].service_account), or its project's
        C(service_accounts) for its namespace), before any request for it - the playbooks pass
        C(gitops_require_identity). The recommended production setting - the run's own identity then needs only to
        impersonate the listed ServiceAccounts, its records and Leases in O(inventory_namespace), and discovery (see
        C(docs/teams-and-least-privilege.md)).
      - A departed application is removed as the identity its record names; without one it is refused too.
    type: bool
    default: false
  mode:
    description: C(push) delivers every selected application; C(reconcile) converges them with Git (see the description).
    type: str
    choices: [push, reconcile]
    default: reconcile
  select:
    description: Names of the applications to sync (a list or a comma-separated string); default all.
    type: raw
  revision:
    description: A sha, tag or branch to deliver instead of each selected application's C(version) (use it with O(select)).
    type: str
  cluster_name:
    description: Name of the cluster in results, lines and the report (the playbooks pass C(inventory_hostname)).
    type: str
    default: cluster
  concurrency:
    description: How many applications of one dependency level converge at the same time, and how many LISTs, fetches
      and renders run at once.
    type: int
    default: 4
  lock_timeout:
    description: Seconds to wait for an application's Lease held by another run before that application fails.
    type: float
    default: 300
  complete:
    description:
      - O(apps) is every application of this cluster (the playbooks say so). Then, in O(mode=reconcile) without
        O(select), an application recorded in the cluster by this cluster host (O(cluster_name)) that is no longer in
        O(apps) has left - like one with C(state=absent) (in any mode) it is removed - its objects pruned under the
        same guards as any prune, then its record and Lease deleted - when it had C(prune) set, and otherwise reported
        C(orphaned) with its objects left in place.
      - Records written by another cluster host name, or by a version that did not record the host, are never removed.
    type: bool
    default: false
  windows:
    description:
      - Deployment windows of this cluster (the playbooks pass C(gitops_windows)), each a mapping of C(kind)
        (C(allow) or C(deny)), C(schedule) (five-field cron or C(@daily)...), C(duration) (seconds or C(2h30m)),
        C(timezone) (IANA name, default UTC), C(apps) and C(clusters) (globs on application names and O(cluster_name),
        default all) and C(manual) (C(true) lets a push through).
      - Outside every allow window that applies, or inside a deny window, O(mode=reconcile) applies nothing - a new
        revision, self-heal and the removal of a departed application are C(held), drift is still reported, and the
        result says why and until when. Nothing is remembered - the first run after the window opens applies the
        change. O(mode=push) there fails the application (step C(window)) unless O(override_window) is given.
      - See C(docs/rollouts-and-windows.md).
    type: list
    elements: raw
    default: []
  override_window:
    description:
      - Why a push goes through the windows that would refuse it (the playbooks pass C(gitops_override_window)). The
        reason is recorded in the history entry of each sync it let through (C(override)) and in the result. Not for
        reconcile - a scheduled run carrying one would run through every freeze.
    type: str
  clock:
    description:
      - The time, in seconds since the epoch, at which the windows and promotion gates decide (the playbooks pass
        C(gitops_clock)). Default is now. For tests and for asking "what would a run at that time do" in check mode.
    type: float
  promote_after:
    description:
      - The promotion gate of every application of this cluster that sets none of its own (the playbooks pass
        C(gitops_promote_after)), as O(apps[].promote_after). A gate that names this cluster host is open.
    type: raw
  promotion_clusters:
    description:
      - Where each cluster host a promotion gate names keeps its records - C(name), the cluster options of
        M(gitops.k8s.cluster_sync) (C(kubeconfig), C(context), C(host), C(api_key)...) and C(inventory_namespace).
      - When the task runs from a playbook, the action fills it in from the inventory - the C(gitops_cluster) and
        C(gitops_inventory_namespace) of each named host - unless given.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The cluster host name a promotion gate's C(cluster) names.
        type: str
        required: true
      kubeconfig:
        description: Path to a kubeconfig file (no connection option at all - the environment, as for O(kubeconfig)).
        type: path
      context:
        description: The kubeconfig context.
        type: str
      host:
        description: URL of the API server.
        type: str
      api_key:
        description: Bearer token used with C(host). Never printed.
        type: str
      ca_cert:
        description: CA certificate bundle of the API server.
        type: path
      client_cert:
        description: Client certificate used with C(host).
        type: path
      client_key:
        description: Key of C(client_cert).
        type: path
      validate_certs:
        description: Whether to verify the API server's certificate.
        type: bool
      request_timeout:
        description: Seconds to wait for one API request.
        type: float
      inventory_namespace:
        description: Namespace of that host's records; default O(inventory_namespace).
        type: str
      inventory_kind:
        description: Kind of that host's records; default O(inventory_kind).
        type: str
        choices: [ConfigMap, Secret]
  bake:
    description:
      - Seconds the applications must stay healthy after the run (a rollout wave's C(bake)), watched, not polled. An
        application one of whose objects turns Degraded or Missing meanwhile, or is not healthy at the end, fails at
        step C(bake); when this run synced it, the verdict is recorded on its history entry and, with C(rollback),
        it goes back to its newest revision recorded healthy. C(0) does not bake.
    type: float
    default: 0
"""

EXAMPLES = r"""
- name: Reconcile every application of this cluster
  gitops.k8s.cluster_sync:
    apps: "{{ gitops_apps }}"
    mode: reconcile
    cluster_name: "{{ inventory_hostname }}"
    kubeconfig: ~/.kube/prod
  register: synced

- name: Push one application at a commit
  gitops.k8s.cluster_sync:
    apps: "{{ gitops_apps }}"
    mode: push
    select: web
    revision: 3f2a9c1e0b7d
"""

RETURN = r"""
results:
  description:
    - One result per application, in dependency order, as C(gitops.k8s.report) reads them - C(app), C(cluster),
      C(namespace), C(trigger), C(decision) (sync, in sync, new revision, drift, rolled back before, superseded,
      held, removed, orphaned, absent),
      C(ok), C(check_mode), C(duration), C(fetch) (repo, ref, revision, previous_revision, changed, commit, path),
      C(info) (the record after the run, without its objects), C(diff), C(apply) (the M(gitops.k8s.apply) result),
      C(health) (the M(gitops.k8s.health_wait) result or a reading), C(rollback), C(error) (C(step), C(msg)) and,
      when a mirror stood in for a source, C(mirrored) (C(repo) and C(helm.repo), each C(from) and C(to)).
    - C(identity) (the user every request for the application acted as, C(system:serviceaccount:<ns>:<name>), or null
      for the run's own), C(service_account) (C(<ns>/<name>)) and C(project). An application refused by its project
      or by O(require_identity) has C(error.step=policy).
    - Skipped applications (a failed dependency, C(suspend)) have C(skipped) with the reason.
    - Held applications (C(decision=held)) have C(held) - C(by) (C(window) or C(promotion)), C(reason) and C(until)
      (when the change may go, in seconds since the epoch, or null); a push let through a window has C(override).
  returned: always
  type: list
  elements: dict
failed_apps:
  description: Names of the applications that failed or were skipped because a dependency failed.
  returned: always
  type: list
  elements: str
phases:
  description: Seconds spent in each phase of the run (sources, render, policy, read, decide, converge, bake, remove).
  returned: always
  type: dict
  sample: {"sources": 0.21, "render": 0.35, "read": 0.08, "decide": 0.05, "converge": 0.0}
duration:
  description: Seconds the whole run took.
  returned: always
  type: float
api_requests:
  description: Requests sent to the API server.
  returned: always
  type: int
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.tasks.cluster_sync_task import ARGSPEC, run_task


def main():
    run_module(ARGSPEC, run_task)


if __name__ == "__main__":
    main()
