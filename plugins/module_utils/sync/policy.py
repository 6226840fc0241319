# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Projects: what an application may deploy, where, and as whom.

A project (one mapping of ``gitops_projects`` on a cluster host; Argo CD's AppProject in shape)
bounds the applications that name it in ``project``:

  name                      the project's name
  source_repos              globs on the app's repository URLs (``repo`` and ``helm.repo``)
  destinations              globs on namespaces: the app's own and every namespaced object's
  cluster_resources         allow-list of {group, kind, name?} for cluster-scoped objects (default none)
  cluster_resources_deny    {group, kind, name?} refused even when allowed
  namespace_resources       allow-list of {group, kind} for namespaced objects (default every kind)
  namespace_resources_deny  {group, kind} refused even when allowed
  service_accounts          [{namespace: glob, service_account: "ns/name" or "name"}]: the identity
                            of an app whose namespace matches (the first rule that does; a bare
                            name is the ServiceAccount of that namespace)
  decryption                the keys its applications decrypt with, besides their own: {age_keys,
                            gpg_keys, vault, vault_ids} (``keys_of``; render/secrets.py)

Globs: ``*`` is any run of characters (within one path segment of a URL; ``**`` crosses them),
``?`` one character. In source_repos and destinations a leading ``!`` denies: a value is permitted
when an allowing pattern matches it and no denying one does, whatever their order (Argo CD's rule;
a list of denials alone permits nothing). URLs compare without credentials, case, a trailing ``/``
or ``.git``. An empty source_repos or destinations permits nothing, as in Argo CD.

An application naming no project is in the project ``default`` when one is defined (as in Argo
CD), else unbounded. Its identity is its own ``service_account`` -- which must live in one of its
project's destinations, so that a team cannot borrow another team's ServiceAccount -- or else its
project's for its namespace. It decrypts the encrypted files of its repository with its own keys
and its project's, never with a key of the controller's or of another project (``keys_of``).

Everything here is pure: ``evaluate`` runs on the rendered bundle before any request for the app,
and each refusal names the file, the object and the rule.
"""

from __future__ import annotations

import re
from collections import namedtuple

from ..errors import GitOpsError
from ..refs import describe, group_of
from ..render.secrets import check_decryption, merge_decryption
from ..sources.git import split_credentials

DEFAULT_PROJECT = "default"
SA_USER_PREFIX = "system:serviceaccount:"
KIND_RULE_KEYS = ("group", "kind", "name")
SERVICE_ACCOUNT_RULE_KEYS = ("namespace", "service_account")
# namespaces and ServiceAccount names are DNS subdomains (RFC 1123)
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

Project = namedtuple("Project", "name source_repos destinations cluster_resources cluster_resources_deny "
                                "namespace_resources namespace_resources_deny service_accounts decryption")
Project.__doc__ = """A validated project: lists of Glob / KindRule; ``namespace_resources`` None allows
every kind; ``service_accounts`` is [(namespace Glob, (namespace or None, name))]; ``decryption``
a checked mapping or None."""
Project.__repr__ = lambda self: "Project(%r)" % self.name  # never the keys of ``decryption``


class Glob(namedtuple("Glob", "text negated regex")):
    """One pattern as written (``text``, with its ``!``); ``regex`` matches what it names."""

    def matches(self, value):
        return self.regex.fullmatch(value) is not None


def compile_glob(text, separator=None, normalize=None):
    """The Glob of ``text``: ``*`` stops at ``separator`` (when given) where ``**`` does not."""
    negated = text.startswith("!")
    body = text[1:] if negated else text
    if normalize:
        body = normalize(body)
    one = "[^%s]" % re.escape(separator) if separator else "."
    parts, i = [], 0
    while i < len(body):
        if body.startswith("**", i):
            parts.append(".*")
            i += 2
            continue
        parts.append({"*": one + "*", "?": one}.get(body[i]) or re.escape(body[i]))
        i += 1
    return Glob(text, negated, re.compile("".join(parts), re.S))


def normalize_url(url):
    """A repository URL as projects compare it: no credentials, case, trailing ``/`` or ``.git``."""
    url = split_credentials(url.strip())[0].lower().rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def permitted(globs, value):
    """(True, None) when an allowing glob matches ``value`` and no denying one does; else
    (False, the denying Glob or None when no allowing one matched)."""
    for glob in globs:
        if glob.negated and glob.matches(value):
            return False, glob
    return any(not glob.negated and glob.matches(value) for glob in globs), None


class KindRule(namedtuple("KindRule", "group kind name")):
    """{group, kind, name?} of a resource list, each a Glob (``name`` None: any name)."""

    def matches(self, group, kind, name):
        return self.group.matches(group) and self.kind.matches(kind) and (self.name is None or self.name.matches(name))

    def __str__(self):
        text = "{group: %r, kind: %r" % (self.group.text, self.kind.text)
        return text + (", name: %r}" % self.name.text if self.name else "}")


def group_kind(group, kind):
    """``Kind.group`` (``Kind`` in the core group), as Kubernetes writes a GroupKind."""
    return "%s.%s" % (kind, group) if group else kind


def service_account_user(namespace, name):
    """The Kubernetes user name of a ServiceAccount (what impersonation sends)."""
    return "%s%s:%s" % (SA_USER_PREFIX, namespace, name)


def parse_service_account(text, where, bare=False):
    """``"ns/name"`` -> (ns, name); with ``bare``, ``"name"`` -> (None, name). GitOpsError names ``where``."""
    if not isinstance(text, str):
        raise GitOpsError("%s must be a string \"<namespace>/<name>\", not %r" % (where, text))
    namespace, slash, name = text.strip().rpartition("/")
    if not slash and bare:
        namespace = None
    elif not (namespace and DNS_NAME.match(namespace)):
        raise GitOpsError("%s must read \"<namespace>/<name>\" (a ServiceAccount), not %r" % (where, text))
    if not DNS_NAME.match(name):
        raise GitOpsError("%s: %r is not a ServiceAccount name (lowercase letters, digits, '-' and '.')" % (where, name))
    return namespace, name


# -- project definitions ---------------------------------------------------------------------

def load_projects(raw, where="gitops_projects"):
    """Validate ``gitops_projects`` (a list of project mappings); return {name: Project}."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, list):
        raise GitOpsError("%s must be a list of projects (mappings with a name), not %r" % (where, raw))
    projects = {}
    for position, spec in enumerate(raw):
        project = load_project(spec, "%s[%d]" % (where, position))
        if project.name in projects:
            raise GitOpsError("%s: project %r is defined twice" % (where, project.name), project=project.name)
        projects[project.name] = project
    return projects


def load_project(spec, where):
    """One project mapping -> Project; GitOpsError naming the project and the field."""
    if not isinstance(spec, dict):
        raise GitOpsError("%s must be a mapping, not %r" % (where, spec))
    name = spec.get("name")
    if not (isinstance(name, str) and DNS_NAME.match(name)):
        raise GitOpsError("%s: name is required (lowercase letters, digits and '-'), not %r" % (where, name))
    where = "project %r" % name
    unknown = sorted(set(spec) - set(Project._fields) - {"description"})
    if unknown:
        raise GitOpsError("%s: unknown key%s %s (known keys: %s)" % (where, "s" if len(unknown) > 1 else "",
                          ", ".join(unknown), ", ".join(Project._fields + ("description",))), project=name)
    try:
        return Project(
            name,
            _globs(spec.get("source_repos"), where + ": source_repos", separator="/", normalize=normalize_url),
            _globs(spec.get("destinations"), where + ": destinations"),
            _kind_rules(spec.get("cluster_resources"), where + ": cluster_resources", named=True),
            _kind_rules(spec.get("cluster_resources_deny"), where + ": cluster_resources_deny", named=True),
            None if spec.get("namespace_resources") is None
            else _kind_rules(spec["namespace_resources"], where + ": namespace_resources"),
            _kind_rules(spec.get("namespace_resources_deny"), where + ": namespace_resources_deny"),
            _service_account_rules(spec.get("service_accounts"), where + ": service_accounts"),
            check_decryption(spec.get("decryption"), where + ": decryption", play=True),
        )
    except GitOpsError as err:
        err.details.setdefault("project", name)
        raise


def _strings(value, where):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise GitOpsError("%s must be a list of non-empty strings, not %r" % (where, value))
    return [item.strip() for item in value]


def _globs(value, where, separator=None, normalize=None):
    """A list of patterns where a leading ``!`` denies."""
    globs = [compile_glob(text, separator, normalize) for text in _strings(value, where)]
    for glob in globs:
        if glob.negated and glob.text.strip("!*") == "":
            raise GitOpsError("%s: %r denies everything (to permit nothing, leave the list empty)" % (where, glob.text))
    return globs


def _kind_rules(value, where, named=False):
    if value is None:
        return []
    if not isinstance(value, list):
        raise GitOpsError("%s must be a list of {group, kind} mappings, not %r" % (where, value))
    keys = KIND_RULE_KEYS if named else KIND_RULE_KEYS[:2]
    rules = []
    for position, item in enumerate(value):
        label = "%s[%d]" % (where, position)
        if not isinstance(item, dict) or set(item) - set(keys):
            raise GitOpsError("%s must be a mapping of %s, not %r" % (label, ", ".join(keys), item))
        if not isinstance(item.get("group"), str) or not (isinstance(item.get("kind"), str) and item["kind"]):
            raise GitOpsError("%s needs group (a string; '' is the core group, '*' any) and kind, not %r"
                              % (label, item))
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise GitOpsError("%s: name must be a string (a glob), not %r" % (label, name))
        rules.append(KindRule(compile_glob(item["group"]), compile_glob(item["kind"]),
                              compile_glob(name) if name else None))
    return rules


def _service_account_rules(value, where):
    if value is None:
        return []
    if not isinstance(value, list):
        raise GitOpsError("%s must be a list of {namespace, service_account} mappings, not %r" % (where, value))
    rules = []
    for position, item in enumerate(value):
        label = "%s[%d]" % (where, position)
        if not isinstance(item, dict) or set(item) != set(SERVICE_ACCOUNT_RULE_KEYS):
            raise GitOpsError("%s must be a mapping of namespace (a glob) and service_account, not %r" % (label, item))
        if not (isinstance(item["namespace"], str) and item["namespace"].strip()):
            raise GitOpsError("%s: namespace must be a glob, not %r" % (label, item["namespace"]))
        account = parse_service_account(item["service_account"], label + ": service_account", bare=True)
        rules.append((compile_glob(item["namespace"].strip()), account))
    return rules


# -- keys ------------------------------------------------------------------------------------

Keys = namedtuple("Keys", "owner decryption")
Keys.__doc__ = """The keys an app decrypts with: ``decryption`` for render (or None), and ``owner``,
whose keys they are (``application <name>``, ``project <name>`` or None): what tells two renders
apart without any key material in the telling."""
Keys.__repr__ = lambda self: "Keys(%r)" % self.owner


def keys_of(app, projects, play_secrets=()):
    """The Keys of ``app``: its own ``decryption`` and its project's (the one it names, else
    ``default`` when defined), the ``vault_ids`` of either resolved among ``play_secrets`` (the play's
    [(vault id, VaultSecret)]). No other key: there is no key for every app."""
    project, refusals = _project_of(app, projects)
    if refusals:
        raise GitOpsError(refusals[0]["message"], app=app.get("name"))
    own, theirs = app.get("decryption"), project.decryption if project else None
    decryption = merge_decryption([("application %r: decryption" % app.get("name"), own),
                                   ("project %r: decryption" % getattr(project, "name", None), theirs)], play_secrets)
    if decryption is None:
        return Keys(None, None)
    return Keys("application %s" % app["name"] if own else "project %s" % project.name, decryption)


# -- evaluation ------------------------------------------------------------------------------

class Verdict(namedtuple("Verdict", "app project identity service_account refusals")):
    """What ``evaluate`` decided for one app: ``project`` (its name or None), ``identity`` (the
    user to impersonate, ``system:serviceaccount:<ns>:<name>``, or None: the run's own),
    ``service_account`` (``"ns/name"`` or None) and ``refusals`` (dicts: rule, message, file, object)."""

    @property
    def allowed(self):
        return not self.refusals

    def as_dict(self):
        return {"project": self.project, "identity": self.identity, "service_account": self.service_account,
                "refusals": list(self.refusals)}

    def error(self):
        """A GitOpsError listing every refusal, or None when there is none."""
        if not self.refusals:
            return None
        head = "application %r is refused by %s; nothing of it is applied:" % (
            self.app, "project %r" % self.project if self.project else "the cluster's policy")
        return GitOpsError("\n  ".join([head] + [r["message"] for r in self.refusals]),
                           app=self.app, project=self.project, refusals=list(self.refusals))


def refusal(rule, message, file=None, obj=None):
    """One refusal: the rule that refused, a message naming file and object, and both as data."""
    return {"rule": rule, "message": message, "file": file, "object": obj}


def evaluate(app, entries, projects, require_identity=False, namespaced=None):
    """Check the app (a normalized ``gitops_apps`` mapping) and its bundle ``entries`` against its
    project among ``projects`` (``load_projects``); resolve its identity. -> Verdict.

    ``namespaced(group, kind)`` says a kind's scope (True, False, or None when unknown; pass
    discovery's answer: render gives a namespace to every kind it does not know as cluster-scoped,
    a ClusterIssuer for one); unknown kinds are namespaced when their entry has a namespace.
    With ``require_identity``, an app without one is refused.
    """
    name = app.get("name")
    project, refusals = _project_of(app, projects)
    if project:
        refusals += _source_refusals(app, project)
        refusals += _app_namespace_refusals(app, project)
        refusals += check_objects(project, entries, namespaced)
    account = _identity(app, project, refusals)
    refused = any(r["rule"] in ("service_account", "service_accounts") for r in refusals)  # said why already
    if account is None and require_identity and not refused:
        refusals.append(refusal("require_identity", "application %r has no identity, and gitops_require_identity "
                                "is set: give it a service_account%s" % (name, _project_hint(app, project))))
    return Verdict(name, project.name if project else None, service_account_user(*account) if account else None,
                   "%s/%s" % account if account else None, refusals)


def _project_hint(app, project):
    if project is None:
        return ""
    return ", or project %r a service_accounts rule for namespace %r" % (project.name, app.get("namespace") or "")


def _project_of(app, projects):
    wanted = app.get("project")
    if not wanted:
        return projects.get(DEFAULT_PROJECT), []
    if wanted in projects:
        return projects[wanted], []
    return None, [refusal("project", "application %r names project %r, which gitops_projects does not define "
                          "(defined: %s)" % (app.get("name"), wanted, ", ".join(sorted(projects)) or "none"))]


def _patterns(globs):
    return ", ".join(glob.text for glob in globs) or "none"


def _source_refusals(app, project):
    urls = [app.get("repo"), (app.get("helm") or {}).get("repo")]
    refusals = []
    for url in filter(None, urls):
        ok, denial = permitted(project.source_repos, normalize_url(url))
        if not ok:
            why = ("is denied by %r" % denial.text if denial else
                   "matches none of its source_repos (%s)" % _patterns(project.source_repos))
            refusals.append(refusal("source_repos", "application %r: repository %s is not permitted by project %r: "
                                    "it %s" % (app.get("name"), split_credentials(url)[0], project.name, why)))
    return refusals


def _destination_problem(project, namespace):
    """Why ``namespace`` is not a destination of ``project``, or None when it is."""
    ok, denial = permitted(project.destinations, namespace)
    if ok:
        return None
    if denial:
        return "namespace %s is denied by %r of project %r's destinations" % (namespace, denial.text, project.name)
    return "namespace %s is not among project %r's destinations (%s)" % (
        namespace or "(none)", project.name, _patterns(project.destinations))


def _app_namespace_refusals(app, project):
    problem = app.get("namespace") and _destination_problem(project, app["namespace"])
    if not problem:
        return []
    return [refusal("destinations", "application %r: %s" % (app.get("name"), problem))]


def check_objects(project, entries, namespaced=None):
    """Refusals of the objects ``entries`` (bundle index entries, or references with an optional
    ``source``: the objects a prune would delete) under ``project``; see ``evaluate``."""
    refusals = []
    for entry in entries:
        group, kind = group_of(entry.get("apiVersion", "")), entry.get("kind", "")
        scoped = namespaced(group, kind) if namespaced else None
        if scoped is None:
            scoped = bool(entry.get("namespace"))
        ref = {k: entry.get(k) or "" for k in ("apiVersion", "kind", "namespace", "name")}
        if not scoped:
            ref["namespace"] = ""  # the server ignores it: the object is cluster-wide
        for rule, problem in _object_problems(project, group, kind, ref, scoped):
            where = "%s: %s" % (entry["source"], describe(ref)) if entry.get("source") else describe(ref)
            refusals.append(refusal(rule, "%s: %s" % (where, problem), entry.get("source"), ref))
    return refusals


def _object_problems(project, group, kind, ref, scoped):
    """[(rule, why)] for one object."""
    label = group_kind(group, kind)
    if not scoped:
        if not any(rule.matches(group, kind, ref["name"]) for rule in project.cluster_resources):
            return [("cluster_resources", "cluster-scoped %s is not in project %r's cluster_resources (%s)"
                     % (label, project.name, ", ".join(map(str, project.cluster_resources)) or "none allowed"))]
        return _denied(project.cluster_resources_deny, "cluster_resources_deny", project, group, kind, ref["name"])
    problems = []
    problem = _destination_problem(project, ref["namespace"])
    if problem:
        problems.append(("destinations", problem))
    allowed = project.namespace_resources
    if allowed is not None and not any(rule.matches(group, kind, ref["name"]) for rule in allowed):
        problems.append(("namespace_resources", "%s is not in project %r's namespace_resources (%s)"
                         % (label, project.name, ", ".join(map(str, allowed)) or "none allowed")))
    return problems + _denied(project.namespace_resources_deny, "namespace_resources_deny", project, group, kind,
                              ref["name"])


def _denied(rules, field, project, group, kind, name):
    hit = next((rule for rule in rules if rule.matches(group, kind, name)), None)
    if hit is None:
        return []
    return [(field, "%s is denied by project %r's %s %s" % (group_kind(group, kind), project.name, field, hit))]


def _identity(app, project, refusals):
    """(namespace, name) of the ServiceAccount the app acts as, or None; refusals appended."""
    where = "application %r" % app.get("name")
    if app.get("service_account"):
        try:
            account = parse_service_account(app["service_account"], where + ": service_account")
        except GitOpsError as err:
            refusals.append(refusal("service_account", str(err)))
            return None
        problem = project and _destination_problem(project, account[0])
        if problem:
            refusals.append(refusal("service_account", "%s: service_account %s/%s is refused: %s (an application may "
                                    "act only as a ServiceAccount of its project's namespaces)"
                                    % (where, account[0], account[1], problem)))
            return None
        return account
    destination = app.get("namespace") or ""
    for glob, (namespace, name) in project.service_accounts if project else ():
        if not glob.matches(destination):
            continue
        if namespace is None and not destination:
            refusals.append(refusal("service_accounts", "%s has no namespace, so project %r's service_accounts rule "
                                    "%r -> %r names no ServiceAccount" % (where, project.name, glob.text, name)))
            return None
        return namespace or destination, name
    return None
