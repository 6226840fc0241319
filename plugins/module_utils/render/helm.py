# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Helm charts through ``helm template``: no cluster, no network, no plugins, no post-renderer.

Dependencies must be vendored in ``charts/``. Values come from files inside the checkout, named
relative to the chart directory as in Argo CD, and from the ``values`` dict, which is passed on
stdin (never written to disk).
"""

from __future__ import annotations

import json
import os
import re

from ..cli import run
from .tools import OFFLINE_ENV, find, private_home

SOURCE = re.compile(r"^# Source: (\S+)", re.M)
SEPARATOR = re.compile(r"^---\s*$", re.M)


def render(checkout, target, options):
    helm = find(["helm"], options.get("helm_binary"), "helm_binary")
    checkout.refuse_escaping_symlinks(target)
    # relative to the chart directory, like Argo CD's valueFiles, so repos migrate unchanged
    values_files = [checkout.resolve(f, "values file", base=target) for f in options.get("values_files") or []]
    chart_rel = checkout.relpath(target)
    argv = [helm, "template", options.get("release_name") or os.path.basename(target), target,
            "--namespace", options.get("namespace") or "default"]
    if options.get("include_crds", True):
        argv.append("--include-crds")
    for path in values_files:
        argv += ["--values", path]
    if options.get("values"):
        argv += ["--values", "-"]
    if options.get("kube_version"):
        argv += ["--kube-version", options["kube_version"]]
    for api in options.get("api_versions") or []:
        argv += ["--api-versions", api]
    with private_home() as home:
        env = dict(OFFLINE_ENV, HELM_CACHE_HOME=home, HELM_CONFIG_HOME=home, HELM_DATA_HOME=home,
                   HELM_PLUGINS=os.path.join(home, "plugins"), HELM_KUBECONTEXT="")
        out = run(argv, cwd=target, env=env, stdin=json.dumps(options.get("values") or {}))
        version = run([helm, "version", "--short"], env=env).strip()
    documents = []
    for chunk in SEPARATOR.split(out):
        match = SOURCE.search(chunk)
        # "# Source: <chart name>/templates/x.yaml" -> the file in the checkout
        source = os.path.join(chart_rel, match.group(1).split("/", 1)[1]) if match else chart_rel
        documents.append((os.path.normpath(source), chunk))
    return documents, "helm %s" % version
