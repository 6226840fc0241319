# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Applications as data: validate a ``gitops_apps`` list and order it by dependencies.

An application says where its manifests live (repo, version, path, render options; or a chart
of a Helm repository or OCI registry in ``helm``, with ``repo`` then optional and holding the
values files) and how to deliver them (namespace, prune, self_heal, wait, rollback...). Everything here is pure:
no Ansible, no cluster, so the playbooks, the action plugin and the tests share one truth.
"""

from __future__ import annotations

import re

from ..sources.charts import check_spec
from ..errors import GitOpsError
from ..render.secrets import check_decryption
from ..sync.ignore import SELECTORS
from ..sync.policy import parse_service_account
from ..sync.promotion import parse_gate
from ..sync.windows import parse_windows

# key -> (accepted Python types, default). Defaults are what the roles assume when a key is absent.
APP_KEYS = {
    "name": ((str,), None),
    "repo": ((str,), None),
    "version": ((str,), None),
    "path": ((str,), "."),
    "render": ((dict,), {}),
    "namespace": ((str,), None),
    "prune": ((bool,), False),
    "self_heal": ((bool,), False),
    "rollback": ((bool,), False),
    "wait": ((dict,), {}),
    "ignore_differences": ((list,), []),
    "replace_on_immutable": ((bool,), False),
    "create_namespace": ((bool,), True),
    "managed_namespace_metadata": ((dict,), {}),
    "custom_health": ((list, dict), []),
    "depends_on": ((list,), []),
    "suspend": ((bool,), False),
    "state": ((str,), "present"),
    "credentials": ((dict,), {}),
    "helm": ((dict,), None),
    "project": ((str,), None),
    "service_account": ((str,), None),
    "decryption": ((dict,), None),
    "windows": ((list,), []),
    "promote_after": ((dict,), None),
}
REQUIRED_KEYS = ("name",)
WAIT_KEYS = {"timeout": (int, float), "enabled": (bool,), "fail_fast": (bool,)}
CREDENTIAL_KEYS = ("username", "password", "key_file", "known_hosts", "accept_hostkey", "ca_file")
NAMESPACE_METADATA_KEYS = ("labels", "annotations")
DEFAULT_WAIT_TIMEOUT = 300
# absent: reconcile deletes the application (its objects under the prune guards, its record)
STATES = ("present", "absent")

# The name becomes part of an inventory hostname and of the in-cluster inventory record.
NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _type_names(types):
    words = {str: "a string", dict: "a mapping", list: "a list", bool: "a boolean", int: "a number", float: "a number"}
    return " or ".join(dict.fromkeys(words[t] for t in types))


def _check_type(label, value, types):
    # bool is an int in Python: a timeout of `true` is a mistake, not one second.
    if isinstance(value, bool) and bool not in types:
        raise GitOpsError("%s must be %s, not %r" % (label, _type_names(types), value))
    if not isinstance(value, types):
        raise GitOpsError("%s must be %s, not %r" % (label, _type_names(types), value))


def _refuse_unknown(where, given, known, name, within=None):
    """An error naming the keys of ``given`` not in ``known`` (of the app, or of its ``within`` mapping)."""
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return
    plural = "s" if len(unknown) > 1 else ""
    if within is None:
        message = "%s: unknown key%s %s (known keys: %s)" % (where, plural, ", ".join(unknown), ", ".join(known))
    else:
        message = "%s: unknown key%s in %s: %s (known: %s)" % (where, plural, within, ", ".join(unknown),
                                                               ", ".join(known))
    raise GitOpsError(message, app=name, unknown_keys=unknown)


def normalize_app(app, position):
    """Validate one application mapping; return a copy with every key present."""
    where = "gitops_apps[%d]" % position
    if not isinstance(app, dict):
        raise GitOpsError("%s must be a mapping, not %r" % (where, app), app_index=position)
    if isinstance(app.get("name"), str):
        where = "application %r" % app["name"]
    _refuse_unknown(where, app, APP_KEYS, app.get("name"))
    for key in REQUIRED_KEYS:
        if app.get(key) in (None, ""):
            raise GitOpsError("%s: %s is required" % (where, key), app=app.get("name"))
    if app.get("repo") in (None, "") and not (isinstance(app.get("helm"), dict) and app["helm"].get("repo")):
        raise GitOpsError("%s: repo is required (or helm.repo for a chart from a Helm repository or OCI registry)"
                          % where, app=app.get("name"))
    _check_decryption(app, where)
    result = _with_defaults(app, where)
    _check_name_and_state(result, where)
    result["wait"] = _normalize_wait(result, where)
    if result["helm"] is not None:
        try:
            result["helm"] = {k: v for k, v in check_spec(result["helm"], "%s: helm" % where).items() if v is not None}
        except GitOpsError as err:
            raise GitOpsError(str(err), app=result["name"], **err.details)
    _check_ignore_differences(result, where)
    _refuse_unknown(where, result["managed_namespace_metadata"], NAMESPACE_METADATA_KEYS, result["name"],
                    "managed_namespace_metadata")
    _refuse_unknown(where, result["credentials"], CREDENTIAL_KEYS, result["name"], "credentials")
    _check_gates(result, where)
    _check_service_account(result, where)
    return result


def _check_service_account(app, where):
    """The identity the app acts as: ``"<namespace>/<name>"`` (whether its project lets it is the engine's
    question: sync/policy.py)."""
    if app["service_account"] is not None:
        try:
            parse_service_account(app["service_account"], "%s: service_account" % where)
        except GitOpsError as err:
            raise GitOpsError(str(err), app=app["name"])


def _check_gates(app, where):
    """``windows`` and ``promote_after`` parsed now (sync/gates.py parses them again when deciding)."""
    try:
        parse_windows(app["windows"] or None, "%s: windows" % where)
        if app["promote_after"] is not None:
            parse_gate(app["promote_after"], "%s: promote_after" % where)
    except GitOpsError as err:
        raise GitOpsError(str(err), app=app["name"], **err.details)


def _check_decryption(app, where):
    """The app's keys, checked before anything could show them (a type error shows the value)."""
    try:
        check_decryption(app.get("decryption"), "%s: decryption" % where, play=True)
    except GitOpsError as err:
        raise GitOpsError(str(err), app=app.get("name"))


def _with_defaults(app, where):
    """Every key of APP_KEYS: the app's value, type-checked, or a fresh copy of the default."""
    result = {}
    for key, (types, default) in APP_KEYS.items():
        value = app.get(key)
        if value is None:
            result[key] = default.copy() if isinstance(default, (dict, list)) else default
            continue
        _check_type("%s: %s" % (where, key), value, types)
        result[key] = value
    return result


def _check_name_and_state(app, where):
    if not NAME_PATTERN.match(app["name"]) or len(app["name"]) > 63:
        raise GitOpsError("%s: name must be lowercase letters, digits and '-' (at most 63), like a Kubernetes name"
                          % where, app=app["name"])
    if app["state"] not in STATES:
        raise GitOpsError("%s: state must be %s, not %r" % (where, " or ".join(STATES), app["state"]),
                          app=app["name"])
    for dep in app["depends_on"]:
        _check_type("%s: depends_on entries" % where, dep, (str,))


def _normalize_wait(app, where):
    """``wait`` checked, with the default of every key it leaves out."""
    _refuse_unknown(where, app["wait"], WAIT_KEYS, app["name"], "wait")
    for key, value in app["wait"].items():
        _check_type("%s: wait.%s" % (where, key), value, WAIT_KEYS[key])
    return dict({"timeout": DEFAULT_WAIT_TIMEOUT, "enabled": True, "fail_fast": True}, **app["wait"])


def _check_ignore_differences(app, where):
    for i, rule in enumerate(app["ignore_differences"]):
        # the engine refuses such a rule too, but only once the run has started
        if not isinstance(rule, dict) or not rule.get("kind"):
            raise GitOpsError("%s: ignore_differences[%d] must be a mapping with a kind, not %r" % (where, i, rule),
                              app=app["name"])
        if not any(rule.get(k) for k in SELECTORS):
            raise GitOpsError("%s: ignore_differences[%d] (%s) names no field: give %s"
                              % (where, i, rule["kind"], ", ".join(SELECTORS)), app=app["name"])


def dependency_levels(apps):
    """Group application names into levels: level N depends only on levels < N.

    Every dependency must name an application of the list; a cycle is an error that names it.
    Within a level the order of the input is kept.
    """
    by_name = {app["name"]: app for app in apps}
    for app in apps:
        missing = [dep for dep in app["depends_on"] if dep not in by_name]
        if missing:
            raise GitOpsError("application %r depends on %s, which %s not defined in gitops_apps"
                              % (app["name"], ", ".join(repr(m) for m in missing), "is" if len(missing) == 1 else "are"),
                              app=app["name"], missing=missing)
    level_of = {}
    visiting = []

    def visit(name):
        if name in level_of:
            return level_of[name]
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise GitOpsError("dependency cycle between applications: %s" % " -> ".join(cycle), cycle=cycle)
        visiting.append(name)
        level = 1 + max([visit(dep) for dep in by_name[name]["depends_on"]] or [-1])
        visiting.pop()
        level_of[name] = level
        return level

    for app in apps:
        visit(app["name"])
    levels = [[] for dummy in range(max(level_of.values(), default=-1) + 1)]
    for app in apps:
        levels[level_of[app["name"]]].append(app["name"])
    return levels


def _selection(select):
    if select is None or select == "" or select == []:
        return None
    if isinstance(select, str):
        select = select.split(",")
    return [name.strip() for name in select if name and name.strip()]


def public_app(app):
    """The application without its credentials' values and keys: safe to return, log or report."""
    safe = dict(app)
    safe["credentials"] = sorted(app["credentials"])
    safe["decryption"] = sorted(app["decryption"]) if app.get("decryption") else None
    if app.get("helm"):
        safe["helm"] = {k: v for k, v in app["helm"].items() if k != "password"}
        safe["helm"]["repositories"] = [{k: v for k, v in r.items() if k != "password"}
                                        for r in app["helm"].get("repositories") or []]
    return safe


def order_apps(apps, select=None):
    """Validate ``apps`` and order the selected ones by dependencies: what a run does.

    ``select``: names (a list or a comma-separated string) to sync; default all. Returns
    ``{"apps": [...], "levels": [[name...]...], "selected": [...], "suspended": [...], "absent": [...]}`` where
    ``levels`` holds the selected, non-suspended applications in dependency order and ``apps``
    the normalized applications with credential values removed. Dependencies outside the
    selection still order the run but are not synced.
    """
    if apps is None:
        apps = []
    if not isinstance(apps, list):
        raise GitOpsError("gitops_apps must be a list of applications, not %r" % type(apps).__name__)
    normalized = [normalize_app(app, i) for i, app in enumerate(apps)]
    seen = set()
    for app in normalized:
        if app["name"] in seen:
            raise GitOpsError("application %r is defined more than once in gitops_apps" % app["name"], app=app["name"])
        seen.add(app["name"])
    levels = dependency_levels(normalized)
    wanted = _selection(select)
    if wanted is not None:
        unknown = [name for name in wanted if name not in seen]
        if unknown:
            raise GitOpsError("no application named %s in gitops_apps (defined: %s)"
                              % (", ".join(repr(n) for n in unknown), ", ".join(sorted(seen)) or "none"),
                              unknown=unknown)
    selected = [app["name"] for app in normalized if wanted is None or app["name"] in wanted]
    suspended = [app["name"] for app in normalized if app["suspend"] and app["name"] in selected]
    absent = [app["name"] for app in normalized if app["state"] == "absent" and app["name"] in selected]
    runnable = set(selected) - set(suspended) - set(absent)
    levels = [[name for name in level if name in runnable] for level in levels]
    return {
        "apps": [public_app(app) for app in normalized],
        "levels": [level for level in levels if level],
        "selected": selected,
        "suspended": suspended,
        "absent": absent,
    }
