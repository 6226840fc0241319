# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Kustomizations through ``kubectl kustomize`` (or a standalone ``kustomize``).

Load restrictions stay on, exec and KRM-function plugins stay off, and remote bases are refused
before the build starts (render has no network); every base must live in the checkout. Helm
chart inflation runs only with ``kustomize_enable_helm`` (charts vendored in the checkout).

kustomize reads its files itself, so when a resource, a patch, a generator's file or a chart's
values file is encrypted, the kustomizations are built from a copy of their folders in a memory
file system (secrets.plaintext_folder), the encrypted files replaced by their plaintext, and the
copy is removed as soon as the build is done.
"""

from __future__ import annotations

import json
import os
import re

from ..cli import find_tool, run_command
from ..errors import GitOpsError
from .documents import load_documents
from .tools import OFFLINE_ENV, private_home

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|git::|github\.com/|gitlab\.com/|bitbucket\.org/)|\?ref=|//", re.I)


def kustomization_file(folder):
    for name in KUSTOMIZATION_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def check_tree(checkout, folder, enable_helm, seen=None):
    """Walk the kustomizations reachable from ``folder``: refuse remote or escaping bases and unasked helm.
    Returns {folder: its kustomization} of every one reached."""
    seen = {} if seen is None else seen
    if folder in seen:
        return seen
    checkout.refuse_escaping_symlinks(folder)
    path = kustomization_file(folder)
    rel = checkout.relpath(path)
    docs = load_documents(rel, checkout.read(path))
    spec = seen[folder] = docs[0] if docs and isinstance(docs[0], dict) else {}
    if spec.get("helmCharts") and not enable_helm:
        raise GitOpsError("%s inflates Helm charts; set kustomize_enable_helm: true to allow it" % rel, file=rel)
    for field in ("resources", "bases", "components"):
        for entry in spec.get(field) or []:
            entry = str(entry)
            local = os.path.join(folder, entry)
            if not os.path.exists(local) and REMOTE.search(entry):
                raise GitOpsError("%s: remote %s %r refused: render has no network; vendor it into the repository"
                                  % (rel, field[:-1], entry), file=rel, remote=entry)
            if os.path.exists(local) and not checkout.contains(local):
                raise GitOpsError("%s: %s %r resolves outside the checkout; refused" % (rel, field[:-1], entry), file=rel)
            if os.path.isdir(local) and kustomization_file(local):
                check_tree(checkout, os.path.realpath(local), enable_helm, seen)
    return seen


def input_files(checkout, specs):
    """The files the kustomizations ``specs`` ({folder: kustomization}) name that may be encrypted:
    resources, patches, the files of secret and config map generators, the values files of charts."""
    for folder, spec in specs.items():
        names = [entry for entry in spec.get("resources") or [] if isinstance(entry, str)]
        names += [entry for entry in spec.get("patchesStrategicMerge") or [] if isinstance(entry, str)]
        for field in ("patches", "patchesJson6902", "helmCharts"):
            names += [entry.get("path") or entry.get("valuesFile") for entry in spec.get(field) or []
                      if isinstance(entry, dict)]
        for field in ("secretGenerator", "configMapGenerator"):
            for generator in spec.get(field) or []:
                if isinstance(generator, dict):
                    # files: [key=]path
                    names += [str(entry).split("=", 1)[-1] for entry in generator.get("files") or []]
                    names += list(generator.get("envs") or []) + [generator.get("env")]
        for name in names:
            path = os.path.join(folder, name) if isinstance(name, str) else None
            if path and os.path.isfile(path) and checkout.contains(path):
                yield os.path.realpath(path)


def render(checkout, target, options):
    enable_helm = bool(options.get("kustomize_enable_helm"))
    specs = check_tree(checkout, target, enable_helm)
    decryptor = options["decryptor"]
    plaintexts = {}
    for path in input_files(checkout, specs):
        plain = decryptor.decrypt(path, checkout.relpath(path))
        if plain is not None:
            plaintexts[path] = plain
    root = decryptor.mirror(checkout.root, specs, plaintexts) if plaintexts else checkout.root
    build = os.path.join(root, checkout.relpath(target))
    binary = find_tool(["kubectl", "kustomize"], options.get("kustomize_binary"), "kustomize_binary")
    standalone = not os.path.basename(binary).startswith("kubectl")
    argv = [binary, "build"] if standalone else [binary, "kustomize"]
    argv += [build, "--load-restrictor", "LoadRestrictionsRootOnly"]
    if enable_helm:
        argv += ["--enable-helm", "--helm-command", find_tool(["helm"], options.get("helm_binary"), "helm_binary")]
    with private_home() as home:
        env = dict(OFFLINE_ENV, HOME=home, XDG_CONFIG_HOME=home, KUSTOMIZE_PLUGIN_HOME=os.path.join(home, "plugins"),
                   HELM_CACHE_HOME=home, HELM_CONFIG_HOME=home, HELM_DATA_HOME=home)
        try:
            out = run_command(argv, cwd=build, env=env)
        except GitOpsError as err:  # paths of the copy, told as paths of the checkout
            raise GitOpsError(str(err).replace(root, checkout.root),
                              **{k: v.replace(root, checkout.root) if isinstance(v, str) else v
                                 for k, v in err.details.items()}) from None
        if standalone:
            version = run_command([binary, "version"], env=env).strip()
        else:
            version = json.loads(run_command([binary, "version", "--client", "-o", "json"], env=env)).get("kustomizeVersion")
    return [(checkout.relpath(kustomization_file(target)), out)], "kustomize %s" % version
