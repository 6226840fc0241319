# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Helm charts from chart repositories (https://) and OCI registries (oci://).

``pull(spec, cache_dir)`` resolves ``spec["version"]`` (an exact version or a semver range, which
helm resolves against the repository index or the registry's tags), downloads the chart archive
and unpacks it once per archive digest under ``<cache_dir>/charts/<sha256>/`` (each pull marks it
used; unused for CHART_MAX_AGE, or beyond the CHART_MAX_COUNT most recently used, it is evicted:
see cache.py). It returns
``{"path", "chart", "version", "digest", "revision"}`` where ``revision`` reads
``<chart>@<version>+<first 12 hex of the digest>``: the app's revision in history and reports.

``build_dependencies(chart_dir, repositories)`` runs ``helm dependency build`` for a chart whose
``Chart.yaml`` names dependencies that are not vendored in ``charts/``.

helm runs with a private, throwaway home (no user repositories, registry logins or plugins);
passwords reach it on stdin only (``--password-stdin``), never in argv, and live in that home
until the call ends. Credentials given for one repository URL are used for that URL only.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from urllib.parse import urlsplit

from .. import cache
from ..cli import find_tool, run_command
from ..deps import require_yaml
from ..errors import GitOpsError

REPOSITORY_ARGSPEC = {
    "url": {"type": "str"}, "username": {"type": "str"}, "password": {"type": "str", "no_log": True},
    "ca_file": {"type": "path"}, "plain_http": {"type": "bool"},
}
# The ``helm`` option of render and of an application, as an Ansible argument spec (secrets no_log).
HELM_ARGSPEC = {"type": "dict", "options": {
    "repo": {"type": "str"}, "chart": {"type": "str"}, "version": {"type": "str"}, "username": {"type": "str"},
    "password": {"type": "str", "no_log": True}, "ca_file": {"type": "path"}, "plain_http": {"type": "bool"},
    "repositories": {"type": "list", "elements": "dict", "options": REPOSITORY_ARGSPEC},
}}
SPEC_KEYS = tuple(HELM_ARGSPEC["options"])
REPOSITORY_KEYS = tuple(REPOSITORY_ARGSPEC)
TIMEOUT = 300
CHART_MAX_AGE = 7 * 24 * 3600
CHART_MAX_COUNT = 128


def describe_source(spec):
    """``oci://host/path/chart`` or ``https://repo chart``: how errors name a chart (never credentials)."""
    if spec["repo"].startswith("oci://"):
        return "%s/%s" % (spec["repo"].rstrip("/"), spec["chart"])
    return "%s (repository %s)" % (spec["chart"], spec["repo"])


def check_spec(spec, where="helm"):
    """Refuse unknown keys and missing repo/chart; return a copy with every key present."""
    if not isinstance(spec, dict):
        raise GitOpsError("%s must be a mapping, not %r" % (where, spec))
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise GitOpsError("%s: unknown key%s %s (known keys: %s)"
                          % (where, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(SPEC_KEYS)),
                          unknown_keys=unknown)
    result = dict.fromkeys(SPEC_KEYS)
    result.update(spec)
    result["repositories"] = list(result["repositories"] or [])
    for i, repository in enumerate(result["repositories"]):
        if not isinstance(repository, dict) or not repository.get("url"):
            raise GitOpsError("%s.repositories[%d] must be a mapping with a url" % (where, i))
        extra = sorted(set(repository) - set(REPOSITORY_KEYS))
        if extra:
            raise GitOpsError("%s.repositories[%d]: unknown key%s %s (known keys: %s)"
                              % (where, i, "s" if len(extra) > 1 else "", ", ".join(extra), ", ".join(REPOSITORY_KEYS)),
                              unknown_keys=extra)
    if result["repo"] is not None:
        if not result["chart"]:
            raise GitOpsError("%s: chart is required with repo %s" % (where, result["repo"]))
        if not str(result["repo"]).startswith(("oci://", "https://", "http://")):
            raise GitOpsError("%s: repo %r must be an oci://, https:// or http:// URL" % (where, result["repo"]))
        if result["repo"].startswith("oci://") and "/" in result["chart"]:
            raise GitOpsError("%s: chart %r must be a name; put its path in repo" % (where, result["chart"]))
    return result


class Helm:
    """helm with a private home; ``add`` gives one repository or registry its credentials."""

    def __init__(self, home, binary=None, timeout=TIMEOUT):
        self.binary = find_tool(["helm"], binary, "helm_binary")
        self.timeout = timeout
        self.env = {
            "HELM_CONFIG_HOME": os.path.join(home, "config"), "HELM_CACHE_HOME": os.path.join(home, "cache"),
            "HELM_DATA_HOME": os.path.join(home, "data"), "HELM_PLUGINS": os.path.join(home, "plugins"),
            "HELM_REGISTRY_CONFIG": os.path.join(home, "registry.json"),
            "HELM_REPOSITORY_CONFIG": os.path.join(home, "repositories.yaml"),
            "HELM_REPOSITORY_CACHE": os.path.join(home, "repository"), "HELM_KUBECONTEXT": "",
            "KUBECONFIG": os.devnull, "DOCKER_CONFIG": os.path.join(home, "docker"),
        }
        self.redact = []
        self.repo_names = {}

    def __call__(self, *args, stdin=None, what):
        try:
            return run_command([self.binary, *args], env=self.env, stdin=stdin, timeout=self.timeout, redact=self.redact)
        except GitOpsError as err:
            stderr = err.details.get("stderr") or str(err)
            raise GitOpsError("%s failed: %s" % (what, _plain(stderr)), stderr=stderr)

    def add(self, url, source, what):
        """Register ``url`` (an https repository or an OCI registry host) with ``source``'s credentials."""
        if source.get("password"):
            self.redact.append(source["password"])
        if url.startswith("oci://"):
            if not source.get("username") and not source.get("password"):
                return None
            host = urlsplit(url).netloc
            args = ["registry", "login", host, "--username", source.get("username") or "", "--password-stdin"]
            if source.get("plain_http"):
                args.append("--insecure")
            self(*args, *_ca_args(source), stdin=source.get("password") or "", what="%s: login to %s" % (what, host))
            return None
        if url in self.repo_names:
            return self.repo_names[url]
        name = "repo%d" % len(self.repo_names)
        args = ["repo", "add", name, url, "--force-update"]
        if source.get("username") or source.get("password"):
            args += ["--username", source.get("username") or "", "--password-stdin"]
        self(*args, *_ca_args(source), stdin=source.get("password") or "",
             what="%s: reading the index of %s" % (what, url))
        self.repo_names[url] = name
        return name


def app_revision(pulled, commit):
    """An app's revision: its commit, or its pulled chart's ``name@version+digest12`` then the values commit."""
    return " ".join(r for r in ((pulled or {}).get("revision"), commit) if r) or None


def _ca_args(source):
    return ["--ca-file", os.path.expanduser(source["ca_file"])] if source.get("ca_file") else []


def _plain(stderr):
    """helm's last error line without the 'Error: ' prefix."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else stderr
    return re.sub(r"^Error:\s*", "", line)


def pull(spec, cache_dir, helm_binary=None, timeout=TIMEOUT):
    """Pull the chart named by ``spec`` into the cache; return path, chart, version, digest, revision."""
    spec = check_spec(spec)
    if not spec["repo"]:
        raise GitOpsError("helm: repo is required to pull a chart")
    what = "pulling the chart %s" % describe_source(spec)
    with tempfile.TemporaryDirectory(prefix="gitops-k8s-helm-") as home:
        helm = Helm(home, helm_binary, timeout)
        download = os.path.join(home, "download")
        os.makedirs(download)
        if spec["repo"].startswith("oci://"):
            helm.add(spec["repo"], spec, what)
            ref = "%s/%s" % (spec["repo"].rstrip("/"), spec["chart"])
            transport = (["--plain-http"] if spec["plain_http"] else []) + _ca_args(spec)
        else:
            ref, transport = "%s/%s" % (helm.add(spec["repo"], spec, what), spec["chart"]), []
        version = ["--version", str(spec["version"])] if spec["version"] else []
        helm("pull", ref, "--destination", download, *version, *transport, what=what)
        archives = [f for f in os.listdir(download) if f.endswith(".tgz")]
        if len(archives) != 1:
            raise GitOpsError("%s: helm pull gave %d archives" % (what, len(archives)))
        return _unpack(os.path.join(download, archives[0]), spec, cache_dir)


def _unpack(archive, spec, cache_dir):
    """Unpack ``archive`` under ``<cache_dir>/charts/<digest>/`` once (atomically); describe it."""
    with open(archive, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    folder = os.path.join(cache_dir, "charts", digest)
    if not os.path.isdir(folder):
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".unpack-", dir=os.path.dirname(folder))
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")  # no absolute paths, '..', links out or devices
            shutil.copyfile(archive, os.path.join(staging, "chart.tgz"))
            try:
                os.rename(staging, folder)
            except OSError:  # another run unpacked the same digest first
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    cache.touch(folder)
    cache.now_and_then(os.path.dirname(folder), evict)
    charts = [d for d in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, d, "Chart.yaml"))]
    if len(charts) != 1:
        raise GitOpsError("the archive of %s holds %d charts, not one" % (describe_source(spec), len(charts)))
    path = os.path.join(folder, charts[0])
    meta = read_chart(path)
    return {"path": path, "chart": meta.get("name") or charts[0], "version": str(meta.get("version")), "digest": digest,
            "revision": "%s@%s+%s" % (meta.get("name") or charts[0], meta.get("version"), digest[:12])}


def evict(folder):
    """Unpacked charts of ``folder`` (``<cache>/charts``) unused for CHART_MAX_AGE, or beyond the
    CHART_MAX_COUNT most recently used, are removed (never one pulled within cache.IN_USE)."""
    cache.evict(folder, CHART_MAX_AGE, CHART_MAX_COUNT)


def read_chart(chart_dir):
    yaml = require_yaml("reading a Chart.yaml")
    path = os.path.join(chart_dir, "Chart.yaml")
    try:
        with open(path, encoding="utf-8") as handle:
            meta = yaml.load(handle, Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError) as err:
        raise GitOpsError("cannot read %s: %s" % (path, err), file=path)
    if not isinstance(meta, dict):
        raise GitOpsError("%s is not a mapping" % path, file=path)
    return meta


def missing_dependencies(chart_dir):
    """Names of the dependencies Chart.yaml declares that ``charts/`` does not hold."""
    charts = os.path.join(chart_dir, "charts")
    present = os.listdir(charts) if os.path.isdir(charts) else []
    missing = []
    for dep in read_chart(chart_dir).get("dependencies") or []:
        name = str((dep or {}).get("name", ""))
        if not any(entry == name or re.match(re.escape(name) + r"-\d.*\.tgz$", entry) for entry in present):
            missing.append(name)
    return missing


def build_dependencies(chart_dir, repositories, helm_binary=None, timeout=TIMEOUT, where=None):
    """``helm dependency build`` in ``chart_dir`` (a private copy: it writes ``charts/``).

    Every https repository a dependency names is registered (with the credentials of the
    matching ``repositories`` entry, if any); OCI registries get a login when credentials are given.
    """
    by_url = {str(r["url"]).rstrip("/"): r for r in repositories or []}
    what = "building the dependencies of %s" % (where or chart_dir)
    with tempfile.TemporaryDirectory(prefix="gitops-k8s-helm-") as home:
        helm = Helm(home, helm_binary, timeout)
        for dep in read_chart(chart_dir).get("dependencies") or []:
            url = str((dep or {}).get("repository") or "").rstrip("/")
            if url.startswith(("https://", "http://", "oci://")):
                helm.add(url, by_url.get(url, {}), what)
        helm("dependency", "build", chart_dir, what=what)
