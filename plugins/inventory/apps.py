# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: apps
short_description: Clusters and their gitops_apps from Argo CD, Harness GitOps and Flux definitions
version_added: 0.1.0
description:
  - Reads application definitions from a folder or a Git repository and yields one host per cluster with its
    C(gitops_apps), ready for the C(gitops.k8s.push) and C(gitops.k8s.reconcile) playbooks.
  - 'Understood: Argo CD C(Application) (one source, or a chart with values from a C(ref) source like C($values/...)),
    C(ApplicationSet) with the C(list), C(git) directories and C(git) files generators, Harness GitOps
    C(application.yml) (C(gitops: {type: application, application: ...})), Flux C(GitRepository) + C(Kustomization)
    and C(HelmRepository) + C(HelmRelease). Other YAML files (manifests, values) are ignored.'
  - 'Teams (C(docs/teams-and-least-privilege.md)): Argo CD C(AppProject)s become the C(gitops_projects) of every cluster
    host - C(sourceRepos), C(destinations) (the namespaces of those whose C(server) or C(name) is that host''s, per
    O(clusters) C(destinations)), C(clusterResourceWhitelist)/C(Blacklist), C(namespaceResourceWhitelist)/C(Blacklist)
    and C(destinationServiceAccounts) - and an C(Application)''s C(spec.project) its C(project) (Argo CD''s own
    C(default) project permits everything: an application naming it is bound only by an C(AppProject) C(default) of
    the definitions). A Flux C(Kustomization)''s or C(HelmRelease)''s C(spec.serviceAccountName) becomes its
    C(service_account), in its C(metadata.namespace) (else its C(spec.targetNamespace)). A C(gitops_projects) in a
    host''s O(clusters) C(vars) replaces the one read.'
  - Fields that have no equivalent are reported as warnings (and in the C(gitops_apps_notes) host variable), never
    silently dropped.
  - A definition that cannot be mapped (several Git sources in one app, a matrix generator, a Kustomization whose
    GitRepository is missing, an application no cluster host takes) is left out with a warning, and the error -
    naming its file and definition - goes into the C(gitops_apps_errors) host variable of every cluster host, on
    which the first task of the C(gitops.k8s.push) and C(gitops.k8s.reconcile) playbooks (and of the
    C(gitops.k8s.sync) role) fails. So does a definitions repository that cannot be fetched. A run never goes on
    quietly without the applications it could not read, and never takes them for removed.
  - 'Other host variables: C(gitops_credentials) (O(credentials) as given, for the tasks) and, with O(repo),
    C(gitops_definitions) (C(repo) - the URL fetched, after O(mirrors) - C(revision) and C(path)).'
  - The inventory is read on every run, so an app-of-apps folder or an ApplicationSet git-directory generator picks up
    new applications (and drops removed ones) on the next reconcile.
  - The configuration file name must end with C(.gitops.yml) or C(.gitops.yaml).
author:
  - gitops.k8s developers (@gitops-k8s)
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [gitops.k8s.apps]
  source:
    description:
      - A folder holding the definitions (searched recursively), relative to the configuration file.
      - Exactly one of O(source) and O(repo).
    type: str
  repo:
    description:
      - A Git repository holding the definitions, fetched like M(gitops.k8s.git_fetch) does (through O(mirrors), with
        the O(credentials) of the URL fetched).
    type: str
  version:
    description: Branch, tag, semver range or commit of O(repo). Default is its HEAD.
    type: str
  path:
    description: The folder of O(repo) holding the definitions.
    type: str
    default: .
  clusters:
    description:
      - The cluster hosts - a mapping of host name to C(destinations) (Argo CD destination names or server URLs, Harness
        cluster identifiers that select this host) and C(vars) (host variables, for example C(gitops_cluster)).
      - Every host gets C(ansible_connection=local).
    type: dict
    default: {}
  default_cluster:
    description:
      - The host for definitions that name no cluster (Flux) or a destination no O(clusters) entry lists. Without it
        such a definition is an error naming its file.
    type: str
  credentials:
    description:
      - Credentials by URL prefix (C(url)), for Git (C(username), C(password), C(key_file), C(known_hosts),
        C(accept_hostkey), C(ca_file)) and chart repositories or registries (C(username), C(password), C(ca_file));
        the longest prefix wins, matched against the URL fetched (after mirrors).
      - The plugin uses them to fetch O(repo) and the repositories of ApplicationSet git generators. Every cluster
        host gets them as C(gitops_credentials), which gives them to each application whose C(repo) or C(helm.repo)
        they match and that has no credentials of its own (see C(docs/applications.md)).
      - Give secrets as templates (C("{{ lookup('env', 'GIT_TOKEN') }}")) or vaulted values. The plugin resolves them
        (with the vault secrets of the run) only for its own fetches; the inventory keeps them as given, and tasks
        resolve them when they use them.
    type: list
    elements: dict
    default: []
  decryption:
    description:
      - Keys for Flux C(Kustomization)s that decrypt SOPS files (C(spec.decryption) with C(provider=sops)) - a mapping
        of a name to the keys of O(gitops.k8s.cluster_sync#module:apps[].decryption) (C(age_keys), C(gpg_keys),
        C(vault), C(vault_ids)). A Kustomization's C(spec.decryption.secretRef.name) picks the entry of that name, whose
        keys become the application's C(decryption) - the Secret Flux would read is not read. A Kustomization naming
        no entry, no C(secretRef), or another provider is an error naming its file.
      - Give keys as templates (C("{{ lookup('env', 'SOPS_AGE_KEY') }}")) or vaulted values; the inventory keeps them as
        given, and the tasks resolve them when they render.
    type: dict
    default: {}
  mirrors:
    description:
      - Where the plugin fetches O(repo) and the repositories of ApplicationSet git generators from - a list of
        C(prefix) and C(replace). A URL that starts with C(prefix) is fetched from C(replace) followed by the rest of
        the URL; the longest prefix wins. The applications' own sources follow the C(gitops_mirrors) host variable
        (the same shape; set it in O(clusters) C(vars), or anywhere else in the inventory).
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
# argo.gitops.yml - Argo CD Applications and ApplicationSets of the folder clusters/production
plugin: gitops.k8s.apps
source: clusters/production
clusters:
  production:
    destinations: [in-cluster, https://kubernetes.default.svc]
    vars:
      gitops_cluster: {kubeconfig: ~/.kube/production.yaml}
credentials:
  - url: https://git.example.com/
    username: ci
    password: "{{ lookup('env', 'GIT_TOKEN') }}"

# flux.gitops.yml - the Flux definitions of a Git repository, applied to one cluster
plugin: gitops.k8s.apps
repo: https://git.example.com/platform/fleet.git
version: main
path: clusters/staging
default_cluster: staging
clusters:
  staging:
    vars:
      gitops_cluster: {context: staging}

# airgapped.gitops.yml - github.com is mirrored on an internal server, for the definitions and the applications
plugin: gitops.k8s.apps
repo: https://github.com/acme/fleet.git
mirrors:
  - {prefix: https://github.com/, replace: https://git.internal.example/github/}
default_cluster: production
clusters:
  production:
    vars:
      gitops_mirrors:
        - {prefix: https://github.com/, replace: https://git.internal.example/github/}
credentials:
  - url: https://git.internal.example/
    username: awx
    password: "{{ lookup('env', 'MIRROR_TOKEN') }}"

# sops.gitops.yml - Flux Kustomizations with spec.decryption {provider: sops, secretRef: {name: sops-age}}
plugin: gitops.k8s.apps
repo: https://git.example.com/platform/fleet.git
default_cluster: production
decryption:
  sops-age:
    age_keys: ["{{ lookup('env', 'SOPS_AGE_KEY') }}"]

# ansible-inventory -i argo.gitops.yml --graph
# ansible-playbook gitops.k8s.reconcile -i argo.gitops.yml
"""

import fnmatch
import os

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

from ansible_collections.gitops.k8s.plugins.module_utils.apps.definitions import Definitions, read_folder
from ansible_collections.gitops.k8s.plugins.module_utils.apps.gitops_apps import normalize_app
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render.secrets import check_decryption
from ansible_collections.gitops.k8s.plugins.module_utils.sources.mirrors import (check_credentials, check_mirrors,
                                                                                 credentials_for, mirrored)
from ansible_collections.gitops.k8s.plugins.module_utils.sources.git import fetch


class InventoryModule(BaseInventoryPlugin):
    NAME = "gitops.k8s.apps"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".gitops.yml", ".gitops.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            self._populate(path)
        except GitOpsError as err:
            raise AnsibleParserError("%s: %s" % (path, err))

    def _fetch(self, url, version):
        """A checkout of ``url`` (through ``mirrors``, with the credentials of the URL used); returns
        (path, url used, revision)."""
        used = mirrored(url, self.get_option("mirrors"))
        creds = credentials_for(used, self.get_option("credentials"))
        # resolved here, for this fetch only: the inventory keeps the templates as given
        result = fetch(used, version=version, **{k: self.templar.template(v) for k, v in creds.items()})
        return result["path"], used, result["revision"]

    def _read(self, config_path):
        """The definitions, and the repository they came from (None for a folder)."""
        source, repo = self.get_option("source"), self.get_option("repo")
        if bool(source) == bool(repo):
            raise GitOpsError("give exactly one of source (a folder) and repo (a Git repository)")
        check_mirrors(self.get_option("mirrors"), "mirrors")
        check_credentials(self.get_option("credentials"), "credentials")
        decryption = self.get_option("decryption") or {}
        for name, keys in decryption.items():
            check_decryption(keys, "decryption.%s" % name, play=True)
        origin = None
        if repo:
            checkout, used, revision = self._fetch(repo, self.get_option("version"))
            origin = {"repo": used, "revision": revision, "path": self.get_option("path") or "."}
            folder = os.path.join(checkout, origin["path"])
        else:
            folder = os.path.join(os.path.dirname(os.path.abspath(config_path)), os.path.expanduser(source))
        if not os.path.isdir(folder):
            raise GitOpsError("%s is not a folder" % folder)
        return read_folder(os.path.realpath(folder), lambda url, version: self._fetch(url, version)[0],
                           decryption), origin

    def _populate(self, config_path):
        clusters = self.get_option("clusters") or {}
        default = self.get_option("default_cluster")
        try:
            definitions, origin = self._read(config_path)
        except GitOpsError as err:  # nothing could be read: the cluster hosts still carry the error
            definitions, origin = Definitions(), None
            definitions.error(os.path.basename(config_path), None, err)
        hosts = self._hosts()
        apps = {}
        for destination, app, rel in definitions.apps:
            host = hosts.get(destination) or default
            try:
                if not host:
                    raise GitOpsError("application %s targets %s, which no clusters entry lists (and there is no "
                                      "default_cluster)" % (app["name"], destination or "no cluster"))
                normalize_app(app, len(apps.get(host, [])))  # refuse now what the playbooks would refuse later
            except GitOpsError as err:
                definitions.error(rel, "application %s" % app["name"], "%s: %s" % (rel, err))
                continue
            apps.setdefault(host, []).append((app, rel))
        for note in definitions.notes:
            self.display.warning("gitops.k8s.apps: %s: %s: %s" % (note["file"], note["definition"], note["message"]))
        for error in definitions.errors:
            self.display.warning("gitops.k8s.apps: %s (left out: the playbooks fail on it)" % error["message"])
        names = set(apps) | set(clusters) | ({default} if default and definitions.errors else set())
        if definitions.errors and not names:
            raise GitOpsError("no cluster host to carry the errors (give clusters or default_cluster): %s"
                              % "; ".join(e["message"] for e in definitions.errors))
        self.inventory.add_group("gitops_clusters")
        for host in sorted(names):
            projects = [p.for_cluster(_cluster_of(host, hosts, default)) for p in definitions.projects]
            self._add_host(host, clusters, apps.get(host, []), definitions, origin, projects)

    def _add_host(self, host, clusters, apps, definitions, origin, projects):
        self.inventory.add_host(host, group="gitops_clusters")
        self.inventory.set_variable(host, "ansible_connection", "local")
        if self.get_option("credentials"):  # as given: templates are resolved by the tasks that use them
            self.inventory.set_variable(host, "gitops_credentials", self.get_option("credentials"))
        if projects:  # the AppProjects as this cluster's projects; a gitops_projects of the host's vars wins
            self.inventory.set_variable(host, "gitops_projects", projects)
        for key, value in (clusters.get(host) or {}).get("vars", {}).items():
            self.inventory.set_variable(host, key, value)
        self.inventory.set_variable(host, "gitops_apps", [app for app, _rel in apps])
        files = {rel for _app, rel in apps}
        self.inventory.set_variable(host, "gitops_apps_notes", [n for n in definitions.notes if n["file"] in files])
        # a definition that could not be mapped may have been any cluster's: every host fails its run on it
        self.inventory.set_variable(host, "gitops_apps_errors", definitions.errors)
        if origin:
            self.inventory.set_variable(host, "gitops_definitions", origin)
        for app, _rel in apps:
            group = self.inventory.add_group("gitops_app_" + app["name"].replace("-", "_"))
            self.inventory.add_host(host, group=group)

    def _hosts(self):
        """destination (Argo CD name or server, Harness cluster identifier, or the host name) -> host."""
        hosts = {}
        for host, entry in (self.get_option("clusters") or {}).items():
            hosts[host] = host
            for destination in (entry or {}).get("destinations") or []:
                hosts[destination] = host
        return hosts


def _cluster_of(host, hosts, default):
    """The ``matches(server, name)`` of an AppProject's destinations on ``host`` (definitions.AppProject):
    a destination is this host's cluster when its server or cluster name (globs) matches one of the
    host's destinations (``hosts``: destination -> host), or, on the default cluster, no host's."""
    mine = [destination for destination, owner in hosts.items() if owner == host]

    def matches(server, name):
        globs = [glob for glob in (server, name) if glob]

        def any_of(destinations):
            return any(fnmatch.fnmatchcase(d, glob) for d in destinations for glob in globs)

        return any_of(mine) or (host == default and not any_of(hosts))

    return matches
