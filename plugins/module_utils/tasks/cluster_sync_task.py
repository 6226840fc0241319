# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Options of gitops.k8s.cluster_sync and the call from them into the per-cluster engine
(shared by the module and its action plugin)."""

from __future__ import annotations

from ..apps.gitops_apps import APP_KEYS, CREDENTIAL_KEYS
from ..sources.charts import HELM_ARGSPEC
from ..cluster.client import Cluster
from ..sync.engine import DEFAULT_CONCURRENCY, DEFAULT_LOCK_TIMEOUT, RunSettings, sync_cluster
from ..sources.mirrors import check_credentials, check_mirrors, sourced_app
from ..sync.policy import Project, load_projects
from ..sync.promotion import parse_gate
from ..sync.windows import parse_windows
from .option_specs import CLUSTER_ARGSPEC, INVENTORY_ARGSPEC

# Every app key is accepted as given (apps.py validates them with messages that name the app);
# the credentials are spelled out so that their secrets are no_log.
APP_OPTIONS = {key: {"type": "raw"} for key in APP_KEYS}
APP_OPTIONS["credentials"] = {"type": "dict", "options": {
    key: {"type": "bool" if key == "accept_hostkey" else "str", "no_log": key == "password"} for key in CREDENTIAL_KEYS}}
APP_OPTIONS["helm"] = HELM_ARGSPEC
# An app's or a project's keys: no_log one kind at a time, so that vault ids stay readable
# (a no_log value is masked wherever it appears in the result, inside app names too).
DECRYPTION_OPTIONS = {"type": "dict", "options": {
    "age_keys": {"type": "raw", "no_log": True},
    "gpg_keys": {"type": "raw", "no_log": True},
    "vault": {"type": "raw", "no_log": True},
    "vault_ids": {"type": "list", "elements": "str"},
}}
APP_OPTIONS["decryption"] = DECRYPTION_OPTIONS
# Projects are validated by policy.load_projects (messages naming the project and the field).
PROJECT_OPTIONS = {key: {"type": "raw"} for key in Project._fields + ("description",)}
PROJECT_OPTIONS.update(name={"type": "str", "required": True}, decryption=DECRYPTION_OPTIONS)

ARGSPEC = dict(
    CLUSTER_ARGSPEC,
    apps={"type": "list", "elements": "dict", "required": True, "options": APP_OPTIONS},
    mirrors={"type": "list", "elements": "dict", "default": [], "options": {
        "prefix": {"type": "str", "required": True}, "replace": {"type": "str", "required": True}}},
    credentials={"type": "list", "elements": "dict", "default": [], "options": dict(
        APP_OPTIONS["credentials"]["options"], url={"type": "str", "required": True})},
    mode={"type": "str", "choices": ["push", "reconcile"], "default": "reconcile"},
    select={"type": "raw"},
    revision={"type": "str"},
    cluster_name={"type": "str", "default": "cluster"},
    concurrency={"type": "int", "default": DEFAULT_CONCURRENCY},
    lock_timeout={"type": "float", "default": DEFAULT_LOCK_TIMEOUT},
    complete={"type": "bool", "default": False},
    projects={"type": "list", "elements": "dict", "default": [], "options": PROJECT_OPTIONS},
    require_identity={"type": "bool", "default": False},
    # windows.py and promotion.py validate these, with messages naming the rule
    windows={"type": "list", "elements": "raw", "default": []},
    override_window={"type": "str"},
    clock={"type": "float"},
    promote_after={"type": "raw"},
    promotion_clusters={"type": "list", "elements": "dict", "default": [], "options": dict(
        CLUSTER_ARGSPEC, name={"type": "str", "required": True}, request_timeout={"type": "float"},
        **{key: dict(spec, default=None) for key, spec in INVENTORY_ARGSPEC.items()})},
    bake={"type": "float", "default": 0},
    **INVENTORY_ARGSPEC,
)


def _given(app):
    """Drop the keys Ansible filled with None (absent in the user's mapping)."""
    out = {k: v for k, v in app.items() if v is not None}
    for key in ("credentials", "decryption"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if v is not None}
    return out


def run_task(call, play_vault=()):
    """The engine call of gitops.k8s.cluster_sync (see ansible_module.Call): the task result.
    ``play_vault``: the play's vault secrets [(vault id, VaultSecret)], which the action plugin has
    and a module process has not; apps and projects name the ones they use in ``vault_ids``."""
    params = call.params
    concurrency = params["concurrency"]
    settings = RunSettings(
        mode=params["mode"], select=params.get("select"), revision=params.get("revision"),
        cluster_name=params["cluster_name"], check=call.check_mode, want_diff=call.diff_mode,
        concurrency=concurrency, lock_timeout=params["lock_timeout"],
        inventory_namespace=params["inventory_namespace"], inventory_kind=params["inventory_kind"],
        progress=call.progress, complete=params["complete"],
        projects=load_projects([_given(project) for project in params["projects"]], "projects"),
        play_vault=tuple(play_vault or ()), require_identity=params["require_identity"],
        windows=tuple(parse_windows(params["windows"])), override_window=params.get("override_window") or None,
        clock=params.get("clock"), bake=params["bake"],
        promote_after=parse_gate(params["promote_after"]) if params.get("promote_after") else None,
        promotion_clusters=tuple(params["promotion_clusters"]),
    )
    mirrors = check_mirrors(params["mirrors"], "mirrors")
    credentials = check_credentials(params["credentials"], "credentials")
    apps, moved = [], {}
    for app in params["apps"]:
        app, rewritten = sourced_app(_given(app), mirrors, credentials)
        apps.append(app)
        if rewritten:
            moved[app.get("name")] = rewritten
    # every app of a level may apply with apply's own 8 workers at once
    cluster = Cluster.from_params(params, pool_size=max(16, concurrency * 8))
    result = sync_cluster(cluster, apps, settings)
    for row in result["results"]:  # which server each source came from, when a mirror stood in
        if row.get("app") in moved:
            row["mirrored"] = moved[row["app"]]
    return result
