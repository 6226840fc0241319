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
  - Fields that have no equivalent are reported as warnings (and in the C(gitops_apps_notes) host variable), never
    silently dropped. A definition that cannot be mapped (several Git sources in one app, a matrix generator, a
    Kustomization whose GitRepository is missing) fails the inventory with an error naming the file.
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
    description: A Git repository holding the definitions, fetched like M(gitops.k8s.git_fetch) does.
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
      - Credentials by URL prefix, given to every application whose C(repo) (Git - C(username), C(password),
        C(key_file), C(known_hosts), C(accept_hostkey), C(ca_file)) or C(helm.repo) (C(username), C(password),
        C(ca_file)) starts with C(url); the longest prefix wins. Also used to fetch O(repo) and the repositories of
        ApplicationSet git generators.
      - Give secrets as templates (C("{{ lookup('env', 'GIT_TOKEN') }}")) or vaulted values; they are kept as given,
        resolved only when a task uses them.
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

# ansible-inventory -i argo.gitops.yml --graph
# ansible-playbook gitops.k8s.reconcile -i argo.gitops.yml
"""

import os

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

from ansible_collections.gitops.k8s.plugins.module_utils.app_definitions import read_folder
from ansible_collections.gitops.k8s.plugins.module_utils.apps import normalize_app
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.source import fetch

GIT_CREDENTIALS = ("username", "password", "key_file", "known_hosts", "accept_hostkey", "ca_file")
HELM_CREDENTIALS = ("username", "password", "ca_file")


class InventoryModule(BaseInventoryPlugin):
    NAME = "gitops.k8s.apps"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".gitops.yml", ".gitops.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            self._populate(os.path.dirname(os.path.abspath(path)))
        except GitOpsError as err:
            raise AnsibleParserError("%s: %s" % (path, err))

    def _credentials(self, url):
        """The entry of ``credentials`` whose url is the longest prefix of ``url``, or {}."""
        best = {}
        for entry in self.get_option("credentials") or []:
            prefix = str(entry.get("url", ""))
            if prefix and str(url or "").startswith(prefix) and len(prefix) > len(best.get("url", "")):
                best = entry
        return best

    def _fetch(self, url, version):
        creds = self._credentials(url)
        options = {k: creds[k] for k in GIT_CREDENTIALS if creds.get(k) is not None}
        return fetch(url, version=version, **options)["path"]

    def _populate(self, config_dir):
        source, repo = self.get_option("source"), self.get_option("repo")
        if bool(source) == bool(repo):
            raise GitOpsError("give exactly one of source (a folder) and repo (a Git repository)")
        if repo:
            folder = os.path.join(self._fetch(repo, self.get_option("version")), self.get_option("path") or ".")
        else:
            folder = os.path.join(config_dir, os.path.expanduser(source))
        if not os.path.isdir(folder):
            raise GitOpsError("%s is not a folder" % folder)
        definitions = read_folder(os.path.realpath(folder), self._fetch)
        hosts = self._hosts()
        apps, files = {}, {}
        for destination, app, rel in definitions.apps:
            host = hosts.get(destination) or self.get_option("default_cluster")
            if not host:
                raise GitOpsError("%s: application %s targets %s, which no clusters entry lists (and there is no "
                                  "default_cluster)" % (rel, app["name"], destination or "no cluster"))
            self._add_credentials(app)
            normalize_app(app, len(apps.get(host, [])))  # refuse now what the playbooks would refuse later
            apps.setdefault(host, []).append(app)
            files.setdefault(host, set()).add(rel)
        for note in definitions.notes:
            self.display.warning("gitops.k8s.apps: %s: %s: %s" % (note["file"], note["definition"], note["message"]))
        self.inventory.add_group("gitops_clusters")
        for host in sorted(set(apps) | set(self.get_option("clusters") or {})):
            self.inventory.add_host(host, group="gitops_clusters")
            self.inventory.set_variable(host, "ansible_connection", "local")
            for key, value in ((self.get_option("clusters") or {}).get(host) or {}).get("vars", {}).items():
                self.inventory.set_variable(host, key, value)
            self.inventory.set_variable(host, "gitops_apps", apps.get(host, []))
            self.inventory.set_variable(host, "gitops_apps_notes",
                                        [n for n in definitions.notes if n["file"] in files.get(host, ())])
            for app in apps.get(host, []):
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

    def _add_credentials(self, app):
        git = self._credentials(app.get("repo"))
        if git and app.get("repo"):
            app["credentials"] = {k: git[k] for k in GIT_CREDENTIALS if git.get(k) is not None}
        helm = self._credentials((app.get("helm") or {}).get("repo"))
        if helm and app.get("helm"):
            app["helm"].update({k: helm[k] for k in HELM_CREDENTIALS if helm.get(k) is not None})
