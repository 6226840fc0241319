# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Applications brought over from Argo CD, Harness GitOps and Flux definitions.

``read_folder(folder, fetch_repo)`` reads every ``.yaml``/``.yml`` file below ``folder`` and maps
the definitions it recognises to ``gitops_apps`` items, each with the cluster it targets:

- Argo CD ``Application`` (``spec.source`` or ``spec.sources`` with a chart and a ``ref`` values
  source; ``spec.project``), ``ApplicationSet`` (list, git-directory and git-file generators),
  ``AppProject`` (mapped to a ``gitops_projects`` item per cluster: ``AppProject.for_cluster``);
- Harness GitOps ``application.yml`` (``gitops: {type: application, application: <Argo CD app>}``);
- Flux ``GitRepository`` + ``Kustomization`` and ``HelmRepository`` + ``HelmRelease``
  (``spec.serviceAccountName``: the app's ``service_account``).

Returns ``Definitions``: ``apps`` (list of ``(cluster, app, file)``), ``projects`` (AppProject),
``notes`` (fields that
were read but have no equivalent, said per file, never silently dropped) and ``errors``: a
definition that cannot be mapped (an unknown generator, several Git sources in one app, a
Kustomization whose source is missing, a file that is not YAML) is left out and said there, with
its file and definition, while the others are still read; the caller decides that the run fails.
Other YAML (plain manifests, values files) is ignored. ``fetch_repo(url, revision)`` returns a
checkout path; ApplicationSet git generators use it.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
from collections import namedtuple
from functools import partial

from ..deps import require_yaml
from ..errors import GitOpsError

ARGO_GROUP = "argoproj.io/"
FLUX_SOURCE = "source.toolkit.fluxcd.io/"
FLUX_KUSTOMIZE = "kustomize.toolkit.fluxcd.io/"
FLUX_HELM = "helm.toolkit.fluxcd.io/"

# Fields read for their meaning elsewhere, or that have no effect here (the controller's own
# bookkeeping): neither mapped nor reported.
QUIET_FIELDS = {"metadata.namespace", "metadata.labels", "metadata.annotations", "metadata.finalizers",
                "spec.interval", "spec.timeout", "spec.sourceRef", "spec.revisionHistoryLimit", "status"}
# syncOptions that describe what gitops.k8s always does (ignored fields are never sent by apply)
NATIVE_SYNC_OPTIONS = {"ServerSideApply=true", "ApplyOutOfSyncOnly=true", "Validate=true", "PruneLast=false",
                       "CreateNamespace=false", "CreateNamespace=true", "RespectIgnoreDifferences=true"}
# syncOptions whose effect gitops.k8s has in another form: what a note says instead of "not supported"
OTHER_FORM_SYNC_OPTIONS = {
    "Replace=true": "applies to no whole application here: objects are written with server-side apply; an object "
                    "annotated gitops.k8s/sync-options: Replace=true (or argocd.argoproj.io/sync-options) is "
                    "replaced, and the app's replace_on_immutable recreates objects whose immutable fields changed",
}
# Argo CD's ignoreDifferences field -> the ignore_differences key (plugins/module_utils/sync/ignore.py)
IGNORE_SELECTORS = {"jsonPointers": "json_pointers", "jqPathExpressions": "jq_path_expressions",
                    "managedFieldsManagers": "managed_fields_managers"}
# Argo CD's source types other than Helm: a source with none of them may be a chart (a Chart.yaml in Git)
NOT_HELM = ("directory", "kustomize", "plugin")


class Definitions:
    def __init__(self):
        self.apps = []
        self.projects = []
        self.notes = []
        self.errors = []

    def add(self, cluster, app, path):
        self.apps.append((cluster, app, path))

    def note(self, path, what, message):
        self.notes.append({"file": path, "definition": what, "message": message})

    def error(self, path, what, err):
        """``err`` (its message names the file and the definition) left ``what`` of ``path`` out."""
        self.errors.append({"file": path, "definition": what, "message": str(err)})

    def mapping(self, path, what, func, *args):
        """``func(*args)``; a GitOpsError becomes an error of ``what``, and the next definition is read."""
        try:
            return func(*args)
        except GitOpsError as err:
            self.error(path, what, err)
        return None


def _what(doc):
    """How errors name a definition: its kind and name (a Harness application by its gitops.name)."""
    if isinstance(doc.get("gitops"), dict):
        return ("Harness application %s" % (doc["gitops"].get("name") or "")).strip()
    return ("%s %s" % (doc.get("kind") or "", (doc.get("metadata") or {}).get("name") or "")).strip() or None


def read_folder(folder, fetch_repo=None, decryption=None):
    """Map every definition found below ``folder`` (see the module docstring). ``decryption``: the
    keys a Flux Kustomization's ``spec.decryption.secretRef`` names, by name ({name: decryption})."""
    found = Definitions()
    flux = {"GitRepository": {}, "HelmRepository": {}, "Kustomization": [], "HelmRelease": []}
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.y*ml"), recursive=True)):
        if "/." in path[len(folder):]:
            continue
        rel = os.path.relpath(path, folder)
        for doc in found.mapping(rel, None, _documents, path, rel) or ():
            found.mapping(rel, _what(doc), _read_definition, doc, rel, found, flux, fetch_repo)
    for kind, mapper, sources in (("Kustomization", partial(flux_kustomization, decryption=decryption),
                                   flux["GitRepository"]),
                                  ("HelmRelease", flux_helm_release, flux["HelmRepository"])):
        for doc, rel in flux[kind]:
            app = found.mapping(rel, _what(doc), mapper, doc, rel, sources, found)
            if app:
                found.add(None, app, rel)
    names, apps = {}, []
    for cluster, app, rel in found.apps:
        key = (cluster, app["name"])
        if key in names:
            found.error(rel, "application %s" % app["name"], GitOpsError(
                "application %r is defined twice: in %s and in %s" % (app["name"], names[key], rel)))
            continue
        names[key] = rel
        apps.append((cluster, app, rel))
    found.apps = apps
    projects = {}
    for project in found.projects:
        if project.name in projects:
            first = projects[project.name].rel
            found.error(project.rel, "AppProject %s" % project.name, GitOpsError(
                "AppProject %r is defined twice: in %s and in %s" % (project.name, first, project.rel)))
            continue
        projects[project.name] = project
    found.projects = list(projects.values())
    return found


def _read_definition(doc, rel, found, flux, fetch_repo):
    """Map one document (or keep a Flux one for when all are read); others are not definitions."""
    kind, api = doc.get("kind"), str(doc.get("apiVersion", ""))
    if "gitops" in doc and isinstance(doc["gitops"], dict) and doc["gitops"].get("type") == "application":
        harness(doc["gitops"], rel, found)
    elif api.startswith(ARGO_GROUP) and kind == "Application":
        cluster, app = argo_application(doc, rel, found)
        found.add(cluster, app, rel)
    elif api.startswith(ARGO_GROUP) and kind == "ApplicationSet":
        application_set(doc, rel, found, fetch_repo)
    elif api.startswith(ARGO_GROUP) and kind == "AppProject":
        found.projects.append(app_project(doc, rel, found))
    elif api.startswith(FLUX_SOURCE) and kind in ("GitRepository", "HelmRepository"):
        flux[kind][_name(doc, rel)] = (doc, rel)
    elif (api.startswith(FLUX_KUSTOMIZE) and kind == "Kustomization") or (
            api.startswith(FLUX_HELM) and kind == "HelmRelease"):
        flux[kind].append((doc, rel))


def _yaml():
    return require_yaml("the gitops.k8s.apps inventory plugin")


def _documents(path, rel):
    yaml = _yaml()
    try:
        with open(path, encoding="utf-8") as handle:
            return [d for d in yaml.load_all(handle, Loader=yaml.SafeLoader) if isinstance(d, dict)]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise GitOpsError("%s: cannot read it as YAML: %s" % (rel, err), file=rel)


def _name(doc, rel):
    name = (doc.get("metadata") or {}).get("name")
    if not name:
        raise GitOpsError("%s: %s has no metadata.name" % (rel, doc.get("kind")), file=rel)
    return str(name)


def _app_name(name):
    """A definition's name as an app name (lowercase letters, digits, '-')."""
    return re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")[:63]


def _unknown(doc, known, rel, what, found, prefix=""):
    """Note every field of ``doc`` not in ``known`` (dotted paths) or QUIET_FIELDS."""
    for key, value in doc.items():
        dotted = prefix + key
        if dotted in QUIET_FIELDS or dotted in known:
            continue
        if isinstance(value, dict) and any(k.startswith(dotted + ".") for k in known):
            _unknown(value, known, rel, what, found, dotted + ".")
        else:
            found.note(rel, what, "%s is not supported; ignored" % dotted)


# -- Argo CD ---------------------------------------------------------------------------------

APP_FIELDS = {"apiVersion", "kind", "metadata.name", "spec.project", "spec.source", "spec.sources",
              "spec.destination.namespace",
              "spec.destination.server", "spec.destination.name", "spec.syncPolicy.automated.prune",
              "spec.syncPolicy.automated.selfHeal", "spec.syncPolicy.automated.allowEmpty", "spec.syncPolicy.syncOptions",
              "spec.syncPolicy.managedNamespaceMetadata", "spec.ignoreDifferences"}
SOURCE_FIELDS = {"repoURL", "targetRevision", "path", "chart", "ref", "helm.valueFiles", "helm.values",
                 "helm.valuesObject", "helm.releaseName", "helm.parameters", "directory.recurse", "directory.include",
                 "directory.exclude"}


def argo_application(doc, rel, found, cluster_hint=None):
    """An Argo CD Application (a dict) -> (cluster, gitops_apps item)."""
    name = _name(doc, rel)
    what = "Application %s" % name
    spec = doc.get("spec") or {}
    _unknown(doc, APP_FIELDS, rel, what, found)
    app = {"name": _app_name(name)}
    source, refs = _argo_manifest_source(spec, rel, what, found)
    _argo_source(app, source)
    render = _argo_render(app, source, refs, name, rel, what)
    if render:
        app["render"] = render
    destination = spec.get("destination") or {}
    if destination.get("namespace"):
        app["namespace"] = destination["namespace"]
    # Argo CD's own default project permits everything: an app naming it is bounded only by a project
    # ``default`` the definitions define (the one an app naming no project is in: sync/policy.py)
    if spec.get("project") and spec["project"] != "default":
        app["project"] = str(spec["project"])
    sync_policy = spec.get("syncPolicy") or {}
    _argo_sync_policy(app, sync_policy, rel, what, found)
    _argo_ignore_differences(app, spec.get("ignoreDifferences") or [], sync_policy.get("syncOptions") or [],
                             rel, what, found)
    cluster = cluster_hint or destination.get("name") or destination.get("server")
    return cluster, app


def _argo_manifest_source(spec, rel, what, found):
    """The one source of manifests (a chart or a Git path) and the 'ref' sources by name."""
    sources = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
    if not sources:
        raise GitOpsError("%s: %s has no spec.source or spec.sources" % (rel, what), file=rel)
    for i, source in enumerate(sources):
        prefix = "spec.sources[%d]." % i if spec.get("sources") else "spec.source."
        _unknown(source, {prefix + f for f in SOURCE_FIELDS}, rel, what, found, prefix)
    charts = [s for s in sources if s.get("chart")]
    refs = {s["ref"]: s for s in sources if s.get("ref")}
    gits = [s for s in sources if not s.get("chart") and not s.get("ref")]
    if len(charts) + len(gits) != 1:
        raise GitOpsError("%s: %s has %d sources of manifests; gitops.k8s maps one (a chart, or a Git path, with "
                          "values from a 'ref' source)" % (rel, what, len(charts) + len(gits)), file=rel)
    return (charts or gits)[0], refs


def _argo_source(app, source):
    """Where the manifests live: ``helm`` for a chart, else ``repo``, ``version`` and ``path``."""
    if source.get("chart"):
        repo = str(source.get("repoURL", ""))
        app["helm"] = {"repo": repo if "://" in repo else "oci://" + repo, "chart": source["chart"]}
        if source.get("targetRevision"):
            app["helm"]["version"] = str(source["targetRevision"])
    else:
        app["repo"] = source.get("repoURL")
        if source.get("targetRevision"):
            app["version"] = str(source["targetRevision"])
        app["path"] = source.get("path") or "."


def _argo_render(app, source, refs, name, rel, what):
    """The render options of the source's helm and directory fields."""
    helm = source.get("helm") or {}
    render = {}
    value_files = _argo_value_files(app, helm, refs, rel, what)
    if value_files:
        render["values_files"] = value_files
    values = _argo_values(helm)
    if values:
        render["values"] = values
    if not any(key in source for key in NOT_HELM):
        # Argo CD (and Harness, built on it) names the release after the Application
        render["release_name"] = str(helm.get("releaseName") or name)
    directory = source.get("directory") or {}
    if directory.get("recurse"):
        render["recurse"] = True
    for key in ("include", "exclude"):
        if directory.get(key):
            render[key] = _braces(directory[key])
    return render


def _argo_value_files(app, helm, refs, rel, what):
    """helm.valueFiles as paths; ``$ref/path`` entries make the 'ref' source the app's repo."""
    value_files = []
    for entry in helm.get("valueFiles") or []:
        match = re.match(r"^\$([\w-]+)/(.*)$", str(entry))
        if not match:
            value_files.append(str(entry))
            continue
        ref = refs.get(match.group(1))
        if ref is None:
            raise GitOpsError("%s: %s: valueFiles entry %s names no 'ref' source" % (rel, what, entry), file=rel)
        if app.get("repo") not in (None, ref["repoURL"]):
            raise GitOpsError("%s: %s: values from a second Git repository cannot be mapped" % (rel, what), file=rel)
        app["repo"], app["path"] = ref["repoURL"], "."
        if ref.get("targetRevision"):
            app["version"] = str(ref["targetRevision"])
        value_files.append(match.group(2))
    return value_files


def _argo_values(helm):
    """helm.values, then helm.valuesObject, then helm.parameters, merged in that order."""
    merged = {}
    if helm.get("values"):
        values = helm["values"]
        if isinstance(values, str):  # Argo CD's values: a YAML document in a string
            yaml = _yaml()
            values = yaml.load(values, Loader=yaml.SafeLoader)
        merged.update(values)
    if helm.get("valuesObject"):
        merged.update(helm["valuesObject"])
    for parameter in helm.get("parameters") or []:
        _set_path(merged, str(parameter.get("name", "")), parameter.get("value"))
    return merged


def _argo_sync_policy(app, sync_policy, rel, what, found):
    """prune, self_heal, create_namespace and managed_namespace_metadata; notes for other syncOptions."""
    automated = sync_policy.get("automated")
    if automated is not None:
        app["prune"] = bool((automated or {}).get("prune"))
        app["self_heal"] = bool((automated or {}).get("selfHeal"))
    options = sync_policy.get("syncOptions") or []
    # Argo CD creates the destination namespace only when asked to
    app["create_namespace"] = "CreateNamespace=true" in options
    metadata = sync_policy.get("managedNamespaceMetadata")
    if metadata:
        app["managed_namespace_metadata"] = {k: v for k, v in metadata.items() if k in ("labels", "annotations")}
    for option in options:
        if option in OTHER_FORM_SYNC_OPTIONS:
            found.note(rel, what, "syncOptions %s %s" % (option, OTHER_FORM_SYNC_OPTIONS[option]))
        elif option not in NATIVE_SYNC_OPTIONS:
            found.note(rel, what, "syncOptions %s is not supported; ignored" % option)


def _argo_ignore_differences(app, items, options, rel, what, found):
    """spec.ignoreDifferences -> ignore_differences (``options``: the syncOptions, for the note)."""
    ignore = []
    for item in items:
        mapped = {k: item[k] for k in ("group", "kind", "name", "namespace") if item.get(k)}
        mapped.update({key: list(item[field]) for field, key in IGNORE_SELECTORS.items() if item.get(field)})
        for extra in sorted(set(item) - {"group", "kind", "name", "namespace"} - set(IGNORE_SELECTORS)):
            found.note(rel, what, "ignoreDifferences.%s is not supported; ignored" % extra)
        ignore.append(mapped)
    if not ignore:
        return
    app["ignore_differences"] = ignore
    if "RespectIgnoreDifferences=true" not in options:
        found.note(rel, what, "ignoreDifferences: the ignored fields are never written by apply (Argo CD's "
                              "RespectIgnoreDifferences=true); without that option Argo CD writes Git's value of "
                              "them on every sync")


def _set_path(values, dotted, value):
    parts = dotted.split(".")
    for part in parts[:-1]:
        values = values.setdefault(part, {})
    values[parts[-1]] = value


def _braces(pattern):
    """Argo CD's ``{a.yaml,b.yaml}`` glob list -> a list of globs."""
    text = str(pattern)
    if text.startswith("{") and text.endswith("}"):
        return [p.strip() for p in text[1:-1].split(",") if p.strip()]
    return [text]


def harness(gitops, rel, found):
    """Harness GitOps application.yml: an Argo CD application under ``gitops.application``."""
    application = gitops.get("application")
    if not isinstance(application, dict):
        raise GitOpsError("%s: gitops.application is missing" % rel, file=rel)
    known = {"name", "identifier", "type", "application", "projectIdentifier", "orgIdentifier", "agentIdentifier",
             "clusterIdentifier", "repoIdentifier", "description", "tags"}
    for key in sorted(set(gitops) - known):
        found.note(rel, "Harness application", "gitops.%s is not supported; ignored" % key)
    meta = dict(application.get("metadata") or {})
    meta.pop("clusterName", None)
    meta["name"] = gitops.get("name") or meta.get("name")
    doc = {"apiVersion": ARGO_GROUP + "v1alpha1", "kind": "Application", "metadata": meta,
           "spec": application.get("spec") or {}}
    cluster, app = argo_application(doc, rel, found, cluster_hint=gitops.get("clusterIdentifier"))
    found.add(cluster, app, rel)


# -- AppProject ------------------------------------------------------------------------------

PROJECT_FIELDS = {"apiVersion", "kind", "metadata.name", "spec.description", "spec.sourceRepos", "spec.destinations",
                  "spec.clusterResourceWhitelist", "spec.clusterResourceBlacklist", "spec.namespaceResourceWhitelist",
                  "spec.namespaceResourceBlacklist", "spec.destinationServiceAccounts"}
# AppProject's resource lists -> the keys of a project (sync/policy.py); a whitelist left out allows
# every namespaced kind and no cluster-scoped one, as in Argo CD
PROJECT_RESOURCE_LISTS = {"clusterResourceWhitelist": "cluster_resources",
                          "clusterResourceBlacklist": "cluster_resources_deny",
                          "namespaceResourceWhitelist": "namespace_resources",
                          "namespaceResourceBlacklist": "namespace_resources_deny"}


class AppProject(namedtuple("AppProject", "name rel policy destinations service_accounts")):
    """An Argo CD AppProject as read: ``policy`` (the project's keys that are the same on every
    cluster), ``destinations`` [(server, name, namespace glob)] and ``service_accounts`` [(server,
    namespace glob, "ns/name" or "name")], whose server (or cluster name) says which cluster each is of."""

    def for_cluster(self, matches):
        """The ``gitops_projects`` item of a cluster host: ``matches(server, name)`` says whether a
        destination (an Argo CD server URL or cluster name, globs) is that host's cluster."""
        project = dict(self.policy, name=self.name)
        project["destinations"] = [namespace for server, name, namespace in self.destinations if matches(server, name)]
        project["service_accounts"] = [{"namespace": namespace, "service_account": account}
                                       for server, namespace, account in self.service_accounts if matches(server, None)]
        return project


def app_project(doc, rel, found):
    """An Argo CD AppProject -> AppProject (sourceRepos, destinations, the resource lists,
    destinationServiceAccounts); other fields are noted."""
    name = _name(doc, rel)
    what = "AppProject %s" % name
    _unknown(doc, PROJECT_FIELDS, rel, what, found)
    spec = doc.get("spec") or {}
    # Argo CD's '*' alone is any repository; its other globs stop at '/' as a project's do
    policy = {"source_repos": ["**" if repo == "*" else str(repo) for repo in spec.get("sourceRepos") or []]}
    if spec.get("description"):
        policy["description"] = str(spec["description"])
    for field, key in PROJECT_RESOURCE_LISTS.items():
        if spec.get(field) is not None:
            policy[key] = [{k: str(rule[k]) for k in ("group", "kind", "name") if rule.get(k) is not None}
                           for rule in spec[field] or []]
    # a destination without a namespace permits only cluster-scoped objects, which the resource lists bound
    destinations = [(d.get("server"), d.get("name"), str(d["namespace"]))
                    for d in spec.get("destinations") or [] if d.get("namespace")]
    accounts = []
    for entry in spec.get("destinationServiceAccounts") or []:
        account = str(entry.get("defaultServiceAccount") or "").strip()
        if not account:
            raise GitOpsError("%s: %s: a destinationServiceAccounts entry has no defaultServiceAccount" % (rel, what),
                              file=rel)
        # Argo CD's "<namespace>:<name>", or a name of the application's destination namespace
        accounts.append((entry.get("server"), str(entry.get("namespace") or "*"), account.replace(":", "/", 1)))
    return AppProject(name, rel, policy, destinations, accounts)


# -- ApplicationSet --------------------------------------------------------------------------

PARAM = re.compile(r"\{\{\s*\.?([A-Za-z0-9_.\[\]-]+)\s*\}\}")


def application_set(doc, rel, found, fetch_repo):
    name = _name(doc, rel)
    spec = doc.get("spec") or {}
    template = spec.get("template")
    if not isinstance(template, dict):
        raise GitOpsError("%s: ApplicationSet %s has no template" % (rel, name), file=rel)
    for key in sorted(set(spec) - {"generators", "template", "goTemplate", "goTemplateOptions"}):
        found.note(rel, "ApplicationSet %s" % name, "spec.%s is not supported; ignored" % key)
    for generator in spec.get("generators") or []:
        kinds = sorted(generator)
        if kinds == ["list"]:
            params = [dict(e) for e in generator["list"].get("elements") or []]
        elif kinds == ["git"] and generator["git"].get("directories"):
            params = _git_directories(generator["git"], rel, name, fetch_repo)
        elif kinds == ["git"] and generator["git"].get("files"):
            params = _git_files(generator["git"], rel, name, fetch_repo)
        else:
            raise GitOpsError("%s: ApplicationSet %s: the %s generator cannot be mapped (list, git directories and "
                              "git files can)" % (rel, name, "/".join(kinds)), file=rel)
        for values in params:
            app_doc = dict(_fill(template, values, rel, name), apiVersion=ARGO_GROUP + "v1alpha1", kind="Application")
            found.add(*argo_application(app_doc, rel, found), rel)


def _checkout(git, rel, name, fetch_repo):
    if fetch_repo is None:
        raise GitOpsError("%s: ApplicationSet %s: git generators need a way to fetch %s" % (rel, name, git.get("repoURL")),
                          file=rel)
    return fetch_repo(git["repoURL"], git.get("revision") or None)


def _path_params(path):
    return {"path": path, "path.basename": os.path.basename(path),
            "path.basenameNormalized": re.sub(r"[^a-z0-9-]", "-", os.path.basename(path).lower()),
            "path.filename": os.path.basename(path)}


def _git_directories(git, rel, name, fetch_repo):
    root = _checkout(git, rel, name, fetch_repo)
    include, exclude = [], []
    for entry in git["directories"]:
        (exclude if entry.get("exclude") else include).append(entry["path"])
    found = []
    for folder, dirs, _files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in dirs:
            path = os.path.relpath(os.path.join(folder, d), root)
            if any(fnmatch.fnmatch(path, p) for p in include) and not any(fnmatch.fnmatch(path, p) for p in exclude):
                found.append(_path_params(path))
    return found


def _git_files(git, rel, name, fetch_repo):
    root = _checkout(git, rel, name, fetch_repo)
    yaml = _yaml()
    params = []
    for entry in git["files"]:
        for path in sorted(glob.glob(os.path.join(root, entry["path"]), recursive=True)):
            file_rel = os.path.relpath(path, root)
            try:
                with open(path, encoding="utf-8") as handle:
                    data = json.load(handle) if path.endswith(".json") else yaml.load(handle, Loader=yaml.SafeLoader)
            except (OSError, ValueError, yaml.YAMLError) as err:
                raise GitOpsError("%s: ApplicationSet %s: cannot read %s of %s: %s"
                                  % (rel, name, file_rel, git["repoURL"], err), file=rel)
            for item in data if isinstance(data, list) else [data]:
                values = dict(_flatten(item or {}), **_path_params(os.path.dirname(file_rel)))
                values["path.filename"] = os.path.basename(file_rel)
                params.append(values)
    return params


def _flatten(data, prefix=""):
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix + str(key) + "."))
        else:
            flat[prefix + str(key)] = value
    return flat


def _fill(value, params, rel, name):
    """The template with every ``{{param}}`` (or Go template ``{{.param}}``) replaced."""
    if isinstance(value, dict):
        return {_fill(k, params, rel, name): _fill(v, params, rel, name) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, params, rel, name) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match):
        key = match.group(1)
        if key not in params:
            raise GitOpsError("%s: ApplicationSet %s: the template uses {{%s}}, which the generator does not give "
                              "(it gives %s)" % (rel, name, key, ", ".join(sorted(params))), file=rel)
        return str(params[key])

    return PARAM.sub(replace, value)


# -- Flux ------------------------------------------------------------------------------------

KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "metadata.name", "spec.path", "spec.prune", "spec.targetNamespace",
                        "spec.postBuild.substitute", "spec.dependsOn", "spec.suspend", "spec.wait", "spec.force",
                        "spec.decryption.provider", "spec.decryption.secretRef.name", "spec.serviceAccountName"}
HELMRELEASE_FIELDS = {"apiVersion", "kind", "metadata.name", "spec.chart.spec.chart", "spec.chart.spec.version",
                      "spec.chart.spec.sourceRef", "spec.values", "spec.releaseName", "spec.targetNamespace",
                      "spec.dependsOn", "spec.suspend", "spec.install.createNamespace", "spec.serviceAccountName"}


def _flux_source(doc, rel, sources, kind):
    spec = doc.get("spec") or {}
    # a Kustomization names its source in spec.sourceRef, a HelmRelease in spec.chart.spec.sourceRef
    ref = spec.get("sourceRef") or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or {}
    if ref.get("kind") != kind or ref.get("name") not in sources:
        raise GitOpsError("%s: %s %s: its sourceRef %s/%s is not among the definitions read (a %s is needed)"
                          % (rel, doc.get("kind"), _name(doc, rel), ref.get("kind"), ref.get("name"), kind), file=rel)
    return sources[ref["name"]]


def _flux_common(doc, spec, app, rel):
    # Flux creates no namespace (a HelmRelease only with install.createNamespace)
    app["create_namespace"] = bool((spec.get("install") or {}).get("createNamespace"))
    if spec.get("targetNamespace"):
        app["namespace"] = spec["targetNamespace"]
    if spec.get("serviceAccountName"):
        # Flux impersonates the ServiceAccount of the object's own namespace
        namespace = (doc.get("metadata") or {}).get("namespace") or spec.get("targetNamespace")
        if not namespace:
            raise GitOpsError("%s: %s %s: spec.serviceAccountName %s names a ServiceAccount of the %s's namespace, "
                              "and it has neither metadata.namespace nor spec.targetNamespace"
                              % (rel, doc.get("kind"), _name(doc, rel), spec["serviceAccountName"], doc.get("kind")),
                              file=rel)
        app["service_account"] = "%s/%s" % (namespace, spec["serviceAccountName"])
    if spec.get("dependsOn"):
        app["depends_on"] = [_app_name(d["name"]) for d in spec["dependsOn"]]
    if spec.get("suspend"):
        app["suspend"] = True


def flux_kustomization(doc, rel, repositories, found, decryption=None):
    name = _name(doc, rel)
    what = "Kustomization %s" % name
    _unknown(doc, KUSTOMIZATION_FIELDS, rel, what, found)
    spec = doc.get("spec") or {}
    source, source_rel = _flux_source(doc, rel, repositories, "GitRepository")
    source_spec = source.get("spec") or {}
    _unknown(source, {"apiVersion", "kind", "metadata.name", "spec.url", "spec.ref.branch", "spec.ref.tag",
                      "spec.ref.semver", "spec.ref.commit", "spec.ref.name", "spec.secretRef"},
             source_rel, "GitRepository %s" % _name(source, source_rel), found)
    ref = source_spec.get("ref") or {}
    app = {"name": _app_name(name), "repo": source_spec.get("url"),
           "path": re.sub(r"^\./", "", str(spec.get("path") or ".")) or "."}
    version = ref.get("commit") or ref.get("name") or ref.get("semver") or ref.get("tag") or ref.get("branch")
    if version:
        app["version"] = str(version)
    app["prune"] = bool(spec.get("prune"))
    app["self_heal"] = True  # Flux always corrects drift on its interval
    if (spec.get("postBuild") or {}).get("substitute"):
        app["render"] = {"substitute": spec["postBuild"]["substitute"]}
    if spec.get("decryption"):
        app["decryption"] = _flux_decryption(spec["decryption"], rel, what, decryption or {})
    _flux_common(doc, spec, app, rel)
    return app


def _flux_decryption(given, rel, what, decryption):
    """spec.decryption -> the keys of the ``decryption`` entry its secretRef names: the Secret itself
    is in the cluster Flux ran in, and keys are given per application, never the controller's own."""
    provider, ref = given.get("provider"), (given.get("secretRef") or {}).get("name")
    if provider != "sops":
        raise GitOpsError("%s: %s: spec.decryption.provider %s is not supported (gitops.k8s decrypts SOPS: provider sops)"
                          % (rel, what, provider), file=rel)
    if not ref:
        raise GitOpsError("%s: %s: spec.decryption has no secretRef: its keys would be the controller's own; name a "
                          "secretRef and give its keys in the decryption entry of that name" % (rel, what), file=rel)
    if ref not in decryption:
        raise GitOpsError("%s: %s: spec.decryption.secretRef %s names no decryption entry of the inventory "
                          "configuration (defined: %s)" % (rel, what, ref, ", ".join(sorted(decryption)) or "none"),
                          file=rel)
    return decryption[ref]


def flux_helm_release(doc, rel, repositories, found):
    name = _name(doc, rel)
    what = "HelmRelease %s" % name
    _unknown(doc, HELMRELEASE_FIELDS, rel, what, found)
    spec = doc.get("spec") or {}
    chart = (spec.get("chart") or {}).get("spec") or {}
    source, source_rel = _flux_source(doc, rel, repositories, "HelmRepository")
    source_spec = source.get("spec") or {}
    _unknown(source, {"apiVersion", "kind", "metadata.name", "spec.url", "spec.type", "spec.secretRef"},
             source_rel, "HelmRepository %s" % _name(source, source_rel), found)
    url = str(source_spec.get("url", ""))
    if source_spec.get("type") == "oci" and not url.startswith("oci://"):
        url = "oci://" + url
    app = {"name": _app_name(name), "helm": {"repo": url, "chart": chart.get("chart")}}
    if chart.get("version"):
        app["helm"]["version"] = str(chart["version"])
    render = {"release_name": spec.get("releaseName") or name}
    if spec.get("values"):
        render["values"] = spec["values"]
    app["render"] = render
    app["self_heal"] = True
    app["prune"] = True  # a Helm release owns its objects: removed from the chart, removed from the cluster
    _flux_common(doc, spec, app, rel)
    return app
