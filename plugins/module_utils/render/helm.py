# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Helm charts through ``helm template``: no cluster, no plugins, no post-renderer.

The chart is a folder of the checkout or one pulled from a chart repository or OCI registry
(``chart_source``). Values come from files inside the checkout, named relative to the chart
directory (or, for a pulled chart, to ``path`` of the checkout, like Argo CD's ``$values``), and
from the ``values`` dict, which is passed on stdin (never written to disk). An encrypted values
file (SOPS, Ansible Vault, or ``!vault`` values) reaches helm as a file of a memory file system,
removed once helm is done (secrets.Decryptor.readable): helm takes several files, in order, and
one stdin. A chart whose
``Chart.yaml`` names dependencies missing from ``charts/`` gets ``helm dependency build`` in a
private copy (the only step that uses the network); otherwise rendering is offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

from ..sources.charts import build_dependencies, missing_dependencies
from ..cli import find_tool, run_command
from ..errors import GitOpsError
from .tools import OFFLINE_ENV, private_home

SOURCE = re.compile(r"^# Source: (\S+)", re.M)
SEPARATOR = re.compile(r"^---\s*$", re.M)


def render(checkout, target, options):
    """Render the chart at ``target`` of the checkout, or the chart ``options["pulled"]`` (then
    ``target``, if any, is the checkout folder values files are relative to)."""
    pulled = options.get("pulled")
    helm = find_tool(["helm"], options.get("helm_binary"), "helm_binary")
    if checkout is not None:
        checkout.refuse_escaping_symlinks(target)
    if options.get("values_files") and checkout is None:
        raise GitOpsError("values_files need source (the checkout they are read from)")
    # relative to the chart directory, like Argo CD's valueFiles, so repos migrate unchanged
    values_files = [checkout.resolve(f, "values file", base=target) for f in options.get("values_files") or []]
    chart_dir = pulled["path"] if pulled else target
    label = "%s@%s" % (pulled["chart"], pulled["version"]) if pulled else checkout.relpath(target)
    with tempfile.TemporaryDirectory(prefix="gitops-k8s-chart-") as scratch:
        if missing_dependencies(chart_dir):
            chart_dir = shutil.copytree(chart_dir, os.path.join(scratch, os.path.basename(chart_dir)), symlinks=True)
            build_dependencies(chart_dir, (options.get("helm") or {}).get("repositories"), options.get("helm_binary"),
                               where=label)
        release = options.get("release_name") or (pulled["chart"] if pulled else os.path.basename(target))
        argv = [helm, "template", release, chart_dir, "--namespace", options.get("namespace") or "default"]
        if options.get("include_crds", True):
            argv.append("--include-crds")
        for path in values_files:
            argv += ["--values", options["decryptor"].readable(path, checkout.relpath(path), vault_tags=True)]
        if options.get("values"):
            argv += ["--values", "-"]
        if options.get("kube_version"):
            argv += ["--kube-version", options["kube_version"]]
        for api in options.get("api_versions") or []:
            argv += ["--api-versions", api]
        with private_home() as home:
            env = dict(OFFLINE_ENV, HELM_CACHE_HOME=home, HELM_CONFIG_HOME=home, HELM_DATA_HOME=home,
                       HELM_PLUGINS=os.path.join(home, "plugins"), HELM_KUBECONTEXT="")
            out = run_command(argv, cwd=chart_dir, env=env, stdin=json.dumps(options.get("values") or {}))
            version = run_command([helm, "version", "--short"], env=env).strip()
    documents = []
    for chunk in SEPARATOR.split(out):
        match = SOURCE.search(chunk)
        # "# Source: <chart name>/templates/x.yaml" -> the file in the checkout (or in the pulled chart)
        source = os.path.join(label, match.group(1).split("/", 1)[1]) if match else label
        documents.append((os.path.normpath(source), chunk))
    return documents, "helm %s" % version
