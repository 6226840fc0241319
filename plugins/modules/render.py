#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: render
short_description: Render a path of a checkout into a validated, ordered bundle
version_added: 0.1.0
description:
  - Turns a directory of plain manifests, a Kustomization, a Helm chart, Jinja2 templates or Jsonnet files into one
    B(bundle) on disk - C(manifest.yaml) (every object, in apply order), C(objects.json) (the same objects as JSON,
    which is what is read back) and C(index.json) (one entry per object, the bundle digest, the source revision and the
    renderer) - that M(gitops.k8s.diff) and M(gitops.k8s.apply) read.
  - The checkout is untrusted input - nothing it contains runs on the controller. Paths that resolve outside it
    (C(..), absolute paths, symlinks) are refused; Jinja2 runs in a sandbox without lookups; kustomize runs with load
    restrictions and without exec or KRM-function plugins; helm runs C(helm template) without post-renderer, plugins or
    cluster access; Jsonnet imports stay inside the checkout. Rendering uses no network (remote kustomize bases are refused),
    except to pull a chart named by O(helm) and to build chart dependencies missing from C(charts/).
  - Validation errors name the file (and the line where YAML parsing fails) - invalid YAML, a missing apiVersion, kind or
    metadata.name (C(generateName) is allowed for hooks), the same object defined twice. C(List) kinds are flattened,
    empty documents skipped.
  - Order - within a sync wave, Namespaces, then CRDs, then Argo CD's kind order (unknown kinds last), then namespace
    and name. Sync waves and hooks come from C(gitops.k8s/sync-wave), C(gitops.k8s/hook) (PreSync, Sync, PostSync,
    SyncFail) and C(gitops.k8s/hook-delete-policy); the C(argocd.argoproj.io/) and C(harnesscd.harnessproj.io/)
    annotations are honoured too, and Helm hook annotations are mapped as Argo CD maps them (pre-install and pre-upgrade
    to PreSync, post-install and post-upgrade to PostSync, hook-weight to the wave). Hooks keep their place in the
    index, flagged by C(hook); objects that are never applied (C(Skip), Helm test hooks) are listed in RV(skipped).
  - Render applies nothing; it touches only the bundle directory.
  - Secrets are never written in clear - each Secret of the bundle is sealed (AES-256-GCM) with a key of this
    controller kept in C(~/.cache/gitops-k8s/keys/bundle.key) (mode 0600); the diff, apply and health_wait modules
    open them on the same controller. Cached bundles unused for a day (or beyond the 256 most recently used) are
    evicted; a bundle used within the last hour never is.
  - Files encrypted with SOPS (YAML, JSON, dotenv, INI and binary files carrying SOPS metadata) or Ansible Vault (whole
    files, and C(!vault) values in Helm values files) are decrypted during the render with the keys of O(decryption)
    only - see O(decryption) and the Secrets page (C(docs/secrets.md)) of the collection. A bundle that holds anything
    decrypted has every object sealed, not only its Secrets, and its decrypted files are listed in RV(renderer.decrypted).
  - O(values), O(vars), O(substitute), O(ext_vars), O(tla) and O(decryption) are C(no_log) - not logged, not shown in
    the invocation, and masked in the result; their values shorter than 4 characters are not masked (Ansible would
    mask them inside every string of the result).
author:
  - gitops.k8s developers (@gitops-k8s)
attributes:
  check_mode:
    support: full
    description:
      - Renders and validates as usual. With the default O(dest) the bundle is written to the cache, because later
        steps of a check run need it; an explicit O(dest) is left alone (the bundle goes to the cache) and C(changed)
        says whether it would change.
  diff_mode:
    support: full
    description: Shows the bundle digest and object count before and after.
options:
  source:
    description:
      - The checkout to render, usually C(path) returned by M(gitops.k8s.git_fetch).
      - The commit it is at is recorded in the bundle as C(revision).
      - Required unless O(helm.repo) names a chart to pull; with it, O(source) is where O(values_files) are read
        (multi-source, like Argo CD's C($values)).
    type: path
  path:
    description:
      - Directory inside O(source) to render. Anything resolving outside the checkout is refused.
    type: str
    default: .
  type:
    description:
      - The renderer. C(auto) picks C(kustomize) when O(path) has a C(kustomization.yaml), C(helm) when it has a
        C(Chart.yaml), else C(directory).
      - C(directory) reads C(.yaml), C(.yml) and C(.json) files. C(jinja) renders C(*.j2) files with O(vars) (plain
        manifests next to them are read as is). C(jsonnet) evaluates C(*.jsonnet) files (needs the C(jsonnet) Python package).
    type: str
    choices: [auto, directory, kustomize, helm, jinja, jsonnet]
    default: auto
  recurse:
    description:
      - For C(directory), C(jinja) and C(jsonnet) - also read the subdirectories (hidden ones never). Off by default, as in Argo CD.
    type: bool
    default: false
  include:
    description:
      - For C(directory), C(jinja) and C(jsonnet) - only files matching one of these globs. A glob with a C(/) matches
        the path relative to O(path), one without also matches the file name.
    type: list
    elements: str
  exclude:
    description:
      - For C(directory), C(jinja) and C(jsonnet) - skip files (and folders) matching one of these globs.
    type: list
    elements: str
  release_name:
    description:
      - For C(helm) - the release name. Default is the chart directory's name.
    type: str
  values_files:
    description:
      - For C(helm) - values files applied in order, each relative to the chart directory O(path), like Argo CD's
        C(valueFiles); for example C(values-production.yaml) beside C(Chart.yaml), or C(../common/values.yaml).
      - A file that resolves outside the checkout (through C(..), an absolute path or a symlink) is refused.
    type: list
    elements: str
  values:
    description:
      - For C(helm) - values applied after O(values_files). Passed to helm on stdin, never written to disk.
    type: dict
  include_crds:
    description:
      - For C(helm) - include the chart's C(crds/) directory.
    type: bool
    default: true
  kube_version:
    description:
      - For C(helm) - the Kubernetes version for C(.Capabilities.KubeVersion) (C(--kube-version)).
    type: str
  api_versions:
    description:
      - For C(helm) - extra API versions for C(.Capabilities.APIVersions) (C(--api-versions)).
    type: list
    elements: str
  kustomize_enable_helm:
    description:
      - For C(kustomize) - allow C(helmCharts) inflation (the charts must be vendored in the checkout).
    type: bool
    default: false
  vars:
    description:
      - For C(jinja) - the variables templates see. Nothing else is visible - no Ansible filters, lookups or facts.
      - Undefined variables are errors.
    type: dict
  ext_vars:
    description:
      - For C(jsonnet) - external variables (C(std.extVar)). Strings are passed as strings, other values as code (their JSON).
    type: dict
  tla:
    description:
      - For C(jsonnet) - top-level arguments, passed like O(ext_vars).
    type: dict
  jsonnet_libs:
    description:
      - For C(jsonnet) - library directories (relative to the checkout root) searched by imports after the importing file's directory.
    type: list
    elements: str
  helm:
    description:
      - A chart from a Helm chart repository or an OCI registry, pulled with C(helm pull), cached by the digest of its
        archive and rendered like a chart of the checkout. The bundle's RV(revision) is then
        C(<chart>@<version>+<first 12 hex digits of the digest>) (followed by the commit of O(source), if given).
      - Without O(helm.repo), only O(helm.repositories) is used - the credentials for the dependencies of a chart of
        the checkout.
      - A chart whose C(Chart.yaml) names dependencies missing from its C(charts/) folder gets C(helm dependency build)
        in a private copy (the checkout is never written) - the only network use of rendering.
    type: dict
    suboptions:
      repo:
        description:
          - C(oci://host/path) (the chart is C(oci://host/path/<chart>)) or the C(https://) URL of a chart repository
            (its C(index.yaml)).
        type: str
      chart:
        description: The chart's name.
        type: str
      version:
        description:
          - An exact version or a semver range (C(^1.2), C(1.2.*), C(>=1.0.0 <2.0.0)); the newest matching one is pulled.
            Default is the newest.
        type: str
      username:
        description: User name for the repository or registry.
        type: str
      password:
        description: Password or token for the repository or registry; passed to helm on stdin, never shown.
        type: str
      ca_file:
        description: CA certificates (PEM) that sign the repository's or registry's TLS certificate.
        type: path
      plain_http:
        description: Talk plain HTTP to the OCI registry (for a registry on localhost without TLS). Default is TLS.
        type: bool
      repositories:
        description:
          - Credentials for the repositories that the chart's dependencies name, by URL. Credentials go to the
            matching URL only; a dependency repository not listed is used without credentials.
        type: list
        elements: dict
        suboptions:
          url:
            description: The repository URL as the chart's C(Chart.yaml) names it (C(https://...) or C(oci://...)).
            type: str
          username:
            description: User name.
            type: str
          password:
            description: Password or token; passed to helm on stdin, never shown.
            type: str
          ca_file:
            description: CA certificates (PEM) of the repository.
            type: path
          plain_http:
            description: Plain HTTP to an OCI registry. Default is TLS.
            type: bool
  helm_binary:
    description:
      - The helm executable. Default is C(helm) on PATH.
    type: str
  kustomize_binary:
    description:
      - The kustomize executable - C(kubectl) (uses C(kubectl kustomize)) or a standalone C(kustomize). Default is
        C(kubectl) on PATH, then C(kustomize).
    type: str
  decryption:
    description:
      - The keys that decrypt the encrypted files of this render, and no others - the controller's own keys
        (C(~/.config/sops/age/keys.txt), C(~/.ssh), C(~/.gnupg), C(SOPS_*) variables, cloud credentials) are never used.
      - 'What is decrypted: for C(directory) and C(jinja), every manifest; for C(kustomize), the resources, patches,
        files and env files of C(secretGenerator) and C(configMapGenerator), and C(helmCharts) values files of every
        kustomization reached; for C(helm), the files of O(values_files) (C(!vault) values included).'
      - SOPS files are decrypted by the C(sops) program (O(sops_binary)), which verifies their MAC; age and PGP keys
        only (render has no network, so no cloud KMS or Vault transit). A file encrypted for none of the given keys
        fails the render with the file and the recipients it was encrypted for; so does a file changed after it was
        encrypted (MAC mismatch) or one that holds SOPS values without valid SOPS metadata.
      - Plaintext stays in memory (directory, jinja) or, for tools that read files (kustomize, helm values files), goes
        to a private folder (mode 0700) on a memory file system (C(/dev/shm), else C($XDG_RUNTIME_DIR)) removed as soon
        as the tool is done. Renders that decrypt are never remembered across runs.
    type: dict
    suboptions:
      age_keys:
        description:
          - age identities (C(AGE-SECRET-KEY-1...)), given to sops through C(SOPS_AGE_KEY).
        type: list
        elements: str
      gpg_keys:
        description:
          - ASCII-armored PGP private keys without passphrase (C(gpg --armor --export-secret-keys)). They are imported
            into a GNUPGHOME created for the render in the private memory folder, and removed with it (its gpg-agent
            stopped) when the render ends. Needs C(gpg) and C(gpgconf) on the controller.
        type: list
        elements: str
      vault:
        description:
          - Ansible Vault secrets for files encrypted with C(ansible-vault) and C(!vault) values of values files - a
            password, or a list of passwords or C({id, password}) dicts (C(id) is the vault id; files naming another
            id are tried with every secret, as Ansible does). Needs ansible-core on the controller.
        type: raw
  sops_binary:
    description:
      - The sops executable, for O(decryption). Default is C(sops) on PATH.
    type: str
  substitute:
    description:
      - Variables for C(${VAR}) and C(${VAR:=default}) in the rendered objects, replaced after rendering like Flux's
        post-build substitution (C($${VAR}) is a literal C(${VAR}); objects annotated
        C(kustomize.toolkit.fluxcd.io/substitute=disabled) are left alone).
      - No substitution at all when unset.
    type: dict
  substitute_strict:
    description:
      - An unresolved C(${VAR}) (not in O(substitute), no default) is an error naming the file and the object. With
        C(false) it is replaced by nothing, as in Flux (a value that was only the variable becomes null).
    type: bool
    default: true
  namespace:
    description:
      - Namespace for namespaced objects that have none (and the helm release namespace). Cluster-scoped kinds - the
        built-in ones and those of CRDs in the bundle - never get one.
    type: str
  labels:
    description:
      - Labels added to every object (overriding the object's own value for the same key).
    type: dict
  annotations:
    description:
      - Annotations added to every object (overriding the object's own value for the same key).
    type: dict
  allow_empty:
    description:
      - Accept a render that produces no object. By default that is an error (an empty bundle would prune everything).
    type: bool
    default: false
  dest:
    description:
      - Directory for the bundle. Default is the content-addressed C(~/.cache/gitops-k8s/bundles/<key>), one folder per
        content, revision and renderer (the key is the SHA-256 of the bundle's index).
    type: path
"""

EXAMPLES = r"""
- name: Render a Helm chart with the production values
  gitops.k8s.render:
    source: "{{ fetched.path }}"
    path: charts/guestbook
    release_name: guestbook
    namespace: guestbook
    values_files: [values-production.yaml]  # beside charts/guestbook/Chart.yaml
    values:
      image: {tag: "{{ image_tag }}"}
  register: rendered

- name: A kustomize overlay, with Flux-style variables
  gitops.k8s.render:
    source: "{{ fetched.path }}"
    path: overlays/production
    substitute:
      CLUSTER_NAME: "{{ inventory_hostname }}"

- name: Every manifest below a folder except its tests
  gitops.k8s.render:
    source: "{{ fetched.path }}"
    path: manifests
    recurse: true
    exclude: ["tests/*"]
    namespace: shop
    labels: {app.kubernetes.io/part-of: shop}

- name: A chart from an OCI registry at a semver range, values from Git (multi-source)
  gitops.k8s.render:
    helm:
      repo: oci://registry.example.com/charts
      chart: podinfo
      version: "6.5.*"
      username: robot
      password: "{{ registry_token }}"
    source: "{{ fetched.path }}"
    path: values/podinfo
    values_files: [production.yaml]  # values/podinfo/production.yaml of the checkout
    namespace: podinfo

- name: A kustomize overlay whose secretGenerator reads SOPS-encrypted env files
  gitops.k8s.render:
    source: "{{ fetched.path }}"
    path: overlays/production
    decryption:
      age_keys: ["{{ shop_age_key }}"]  # a variable encrypted with Ansible Vault
  register: rendered  # rendered.renderer.decrypted lists the files

- name: A chart whose values files hold !vault values
  gitops.k8s.render:
    source: "{{ fetched.path }}"
    path: charts/shop
    values_files: [secrets.yaml]
    decryption:
      vault: [{id: prod, password: "{{ shop_vault_password }}"}]

- name: Jinja2 templates, sandboxed
  gitops.k8s.render:
    source: "{{ fetched.path }}"
    path: templates
    type: jinja
    vars: {replicas: 3, env: production}

- name: The hooks of the bundle
  ansible.builtin.debug:
    msg: "{{ rendered.objects | selectattr('hook') | map(attribute='name') }}"
"""

RETURN = r"""
bundle:
  description: The bundle directory (C(manifest.yaml) and C(index.json)); pass it to M(gitops.k8s.diff) and M(gitops.k8s.apply).
  returned: success
  type: str
digest:
  description: The bundle digest, sha256 over the objects' digests in order; equal digests mean identical bundles.
  returned: success
  type: str
count:
  description: Number of objects in the bundle (hooks included, skipped objects not).
  returned: success
  type: int
kinds:
  description: Number of objects per kind.
  returned: success
  type: dict
  sample: {"Deployment": 1, "Service": 1, "ConfigMap": 2}
objects:
  description:
    - The index entries, in apply order - C(apiVersion), C(kind), C(namespace) (empty for cluster-scoped objects),
      C(name) (the C(generateName) prefix for such hooks), C(wave) (int), C(hook) (list of phases, or null for normal
      objects), C(hook_delete_policy) (list), C(source) (file, relative to the checkout) and C(digest) (sha256 of the
      object's canonical JSON). Never the manifests themselves.
  returned: success
  type: list
  elements: dict
  sample: [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "guestbook", "name": "web", "wave": 0,
            "hook": null, "hook_delete_policy": [], "source": "apps/guestbook/deployment.yaml", "digest": "3f1c..."}]
skipped:
  description: Objects rendered but never applied (C(Skip) hooks, Helm hooks without a sync equivalent such as tests), with C(reason).
  returned: success
  type: list
  elements: dict
revision:
  description:
    - The commit the checkout is at, recorded in the bundle; null when O(source) is not a git checkout.
    - For a chart pulled with O(helm), C(<chart>@<version>+<digest12>), followed by a space and the commit of O(source)
      when values come from Git.
  returned: success
  type: str
  sample: podinfo@6.5.4+3f2a1b9c8d7e
chart:
  description:
    - The chart pulled with O(helm) - C(chart) (name), C(version) (the resolved one), C(digest) (sha256 of the chart
      archive) and C(revision); null when the chart (if any) is a folder of the checkout.
  returned: success
  type: dict
  sample: {"chart": "podinfo", "version": "6.5.4", "digest": "3f2a1b9c8d7e...", "revision": "podinfo@6.5.4+3f2a1b9c8d7e"}
renderer:
  description: The renderer used and its version.
  returned: success
  type: dict
  sample: {"type": "helm", "version": "helm v3.22.0+g...", "decrypted": ["values/production.sops.yaml"]}
  contains:
    type:
      description: The renderer (C(directory), C(kustomize), C(helm), C(jinja) or C(jsonnet)).
      type: str
      returned: success
    version:
      description: The version of the tool or library that rendered.
      type: str
      returned: success
    decrypted:
      description: The files the render decrypted (see O(decryption)), relative to the checkout.
      type: list
      elements: str
      returned: when the render decrypted files
file:
  description: The file a validation error is about, relative to the checkout.
  returned: failure
  type: str
line:
  description: The line of RV(file) where YAML parsing or template rendering failed.
  returned: failure, when known
  type: int
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.sources.charts import HELM_ARGSPEC
from ansible_collections.gitops.k8s.plugins.module_utils.render import read_index, render

ARGSPEC = {
    "source": {"type": "path"},
    "path": {"type": "str", "default": "."},
    "type": {"type": "str", "default": "auto", "choices": ["auto", "directory", "kustomize", "helm", "jinja", "jsonnet"]},
    "recurse": {"type": "bool", "default": False},
    "include": {"type": "list", "elements": "str"},
    "exclude": {"type": "list", "elements": "str"},
    "release_name": {"type": "str"},
    "values_files": {"type": "list", "elements": "str"},
    "values": {"type": "dict", "no_log": True},
    "include_crds": {"type": "bool", "default": True},
    "kube_version": {"type": "str"},
    "api_versions": {"type": "list", "elements": "str"},
    "kustomize_enable_helm": {"type": "bool", "default": False},
    "vars": {"type": "dict", "no_log": True},
    "ext_vars": {"type": "dict", "no_log": True},
    "tla": {"type": "dict", "no_log": True},
    "jsonnet_libs": {"type": "list", "elements": "str"},
    "helm": HELM_ARGSPEC,
    "helm_binary": {"type": "str"},
    "kustomize_binary": {"type": "str"},
    "decryption": {"type": "dict", "no_log": True, "options": {
        "age_keys": {"type": "list", "elements": "str", "no_log": True},
        "gpg_keys": {"type": "list", "elements": "str", "no_log": True},
        "vault": {"type": "raw", "no_log": True},
    }},
    "sops_binary": {"type": "str"},
    "substitute": {"type": "dict", "no_log": True},
    "substitute_strict": {"type": "bool", "default": True},
    "namespace": {"type": "str"},
    "labels": {"type": "dict"},
    "annotations": {"type": "dict"},
    "allow_empty": {"type": "bool", "default": False},
    "dest": {"type": "path"},
}


# Options that may carry secrets (from a vault): no_log in ARGSPEC (see run_module for what that does).
MASKED = ("values", "vars", "substitute", "ext_vars", "tla", "decryption")


def engine(call):
    params = call.params
    before = read_index(params["dest"]) if call.diff_mode and params["dest"] else None
    result = render(check_mode=call.check_mode, **params)
    if call.diff_mode:
        result["ansible_diff"] = {
            "before": "digest: %s\ncount: %s\n" % ((before or {}).get("digest"), (before or {}).get("count")),
            "after": "digest: %s\ncount: %s\n" % (result["digest"], result["count"]),
        }
    return result


def main():
    run_module(ARGSPEC, engine, masked_options=MASKED)


if __name__ == "__main__":
    main()
