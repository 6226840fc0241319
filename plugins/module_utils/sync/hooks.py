# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Step 5 of apply, the hooks: PreSync, Sync (per wave), PostSync and SyncFail, as Argo CD runs them.

Hooks are objects of the bundle marked as such (bundle entries with ``hook``); they are per run,
never recorded. Each is dry-run with the plan (validate_hooks), then started when its phase
comes, wave by wave within the phase, and waited for; a hook that is not healthy fails the run.
Hooks with ``generateName`` get a new name each run, so every hook carries HOOK_LABEL (one value
per app and hook) by which the BeforeHookCreation policy finds the previous run's copies.
"""

from __future__ import annotations

import copy
import hashlib

from ..cluster.client import ApiError
from ..concurrency import each
from ..errors import GitOpsError
from ..masking import redact
from ..refs import describe, group_of, key_of, ref_of
from .compare import crd_kinds, rejection, validate_elsewhere
from .waves import wait_gone

HOOK_LABEL = "gitops.k8s/hook"
DEFAULT_HOOK_POLICY = ["BeforeHookCreation"]


def validate_hooks(run, missing_namespaces):
    """Dry-run every hook object (a create for generateName, an apply otherwise); the rejections."""
    def one(pair):
        entry, obj = pair
        ref = ref_of(obj)
        try:
            if ref["namespace"] in missing_namespaces:
                validate_elsewhere(run.cluster, obj, run.opts.field_manager)
            elif (obj.get("metadata") or {}).get("name"):
                run.cluster.apply(obj, run.opts.field_manager, force=True, dry_run=True)
            else:
                run.cluster.create(obj, run.opts.field_manager, dry_run=True)
        except ApiError as err:
            return rejection(ref, entry.get("source"), err.server_message or str(err), (obj,))
        except GitOpsError as err:
            if (group_of(ref["apiVersion"]), ref["kind"]) in crd_kinds(run.bundle.objects):
                return None  # its CRD is in this bundle and not served yet
            return rejection(ref, entry.get("source"), str(err), (obj,), unreachable=True)
        return None

    return [r for r in each(run.opts.concurrency, one, run.hook_pairs) if r]


def run_hooks(run, phase, wave=None):
    """Run the hooks of ``phase`` (of one ``wave`` when given), wave by wave, as Argo CD orders them;
    fails naming the hooks that were not healthy."""
    pairs = [(e, o) for e, o in run.hook_pairs if phase in (e.get("hook") or ())
             and (wave is None or e.get("wave", 0) == wave)]
    for hook_wave in sorted({e.get("wave", 0) for e, _obj in pairs}):
        batch = [(e, o) for e, o in pairs if e.get("wave", 0) == hook_wave]
        started = each(run.opts.concurrency, lambda pair: start_hook(run, phase, *pair), batch)
        outcome = hook_outcome(run, [h for h in started if h.get("name")])
        for hook, (entry, _obj) in zip(started, batch):
            apply_delete_policy(run, hook, entry)
        run.hooks.extend(started)
        failed = [h for h in started if h["status"] != "Healthy"]
        if failed:
            raise GitOpsError(
                "%s hook(s) failed: %s" % (phase, "; ".join("%s: %s" % (describe(hook_ref(h)), h["message"])
                                                            for h in failed)),
                hooks=run.hooks, health=outcome,
            )


def start_hook(run, phase, entry, obj):
    """Create (generateName) or apply one hook, labelled with its hook id; its hook entry."""
    body = copy.deepcopy(obj)
    ref = ref_of(obj)
    identifier = hook_id(run.app, ref)
    body["metadata"].setdefault("labels", {})[HOOK_LABEL] = identifier
    policy = entry.get("hook_delete_policy") or DEFAULT_HOOK_POLICY
    hook = dict(ref, phase=phase, status="Progressing", message="", deleted=False, source=entry.get("source"))
    try:
        if "BeforeHookCreation" in policy:
            delete_previous_hooks(run, ref, identifier, bool(body["metadata"].get("name")))
        if body["metadata"].get("name"):
            created = run.cluster.apply(body, run.opts.field_manager, force=True)
        else:
            created = run.cluster.create(body, run.opts.field_manager)
    except GitOpsError as err:
        hook.update(status="Degraded", message=redact(str(err), (obj,)), name="")
        return hook
    hook["name"] = created["metadata"]["name"]
    return hook


def delete_previous_hooks(run, ref, identifier, fixed_name):
    """BeforeHookCreation: delete the hook's copies of earlier runs (by name, or by its label when
    it has generateName) and wait until they are gone."""
    resource = run.cluster.resource(ref["apiVersion"], ref["kind"])
    if fixed_name:
        previous = [ref] if run.cluster.delete(ref, propagation="Background") else []
    else:
        items, _version = run.cluster.list(resource, namespace=ref["namespace"] or None,
                                           label_selector="%s=%s" % (HOOK_LABEL, identifier))
        previous = [ref_of(o) for o in items]
        for old in previous:
            run.cluster.delete(old, propagation="Background")
    wait_gone(run, previous, "%s (previous hook)" % describe(ref))


def hook_outcome(run, hooks):
    """Wait for the started ``hooks`` (fail fast) and put each one's status and message on it."""
    if not hooks:
        return None
    from ..health.watch import wait_healthy  # the health_wait engine; imported here to keep apply importable alone

    outcome = wait_healthy(run.cluster, [hook_ref(h) for h in hooks], timeout=run.opts.timeout, fail_fast=True,
                           custom_health=run.opts.custom_health)
    by_key = {key_of(r["ref"]): r for r in outcome["resources"]}
    for hook in hooks:
        found = by_key.get(key_of(hook_ref(hook))) or {}
        hook["status"] = found.get("status") or ("Healthy" if outcome["healthy"] else "Unknown")
        hook["message"] = found.get("message") or ""
    return outcome


def apply_delete_policy(run, hook, entry):
    """HookSucceeded / HookFailed: delete the hook that ended so, when it was created."""
    policy = entry.get("hook_delete_policy") or DEFAULT_HOOK_POLICY
    done = "HookSucceeded" if hook["status"] == "Healthy" else "HookFailed"
    if done in policy and hook.get("name"):
        run.cluster.delete(hook_ref(hook), propagation="Background")
        hook["deleted"] = True


def hook_id(app, ref):
    """A label value naming one hook of one app across runs (generateName gives new names)."""
    return hashlib.sha256(("%s|%s|%s|%s" % ((app,) + key_of(ref)[1:])).encode("utf-8")).hexdigest()[:20]


def hook_ref(hook):
    """The object reference of a hook entry (its generated name once created)."""
    return {k: hook.get(k) or "" for k in ("apiVersion", "kind", "namespace", "name")}
