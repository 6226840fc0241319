# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Sync waves and hooks from annotations, read the way Argo CD reads them.

The first of these prefixes that carries an annotation wins: ``gitops.k8s/``,
``argocd.argoproj.io/``, ``harnesscd.harnessproj.io/``, each with ``sync-wave``, ``hook`` and
``hook-delete-policy``. Without one, Helm's hook annotations are mapped as Argo CD maps them:
pre-install/pre-upgrade -> PreSync, post-install/post-upgrade -> PostSync, hook-weight -> wave;
Helm hooks with no equivalent (test, pre-delete, rollback...) are not applied, nor is ``Skip``.
"""

from __future__ import annotations

from ..errors import GitOpsError
from ..refs import describe, ref_of

PREFIXES = ("gitops.k8s/", "argocd.argoproj.io/", "harnesscd.harnessproj.io/")
PHASES = ("PreSync", "Sync", "PostSync", "SyncFail")
POLICIES = ("BeforeHookCreation", "HookSucceeded", "HookFailed")
UNSUPPORTED_PHASES = ("PreDelete", "PostDelete", "Skip")
HELM_PHASES = {"pre-install": "PreSync", "pre-upgrade": "PreSync", "post-install": "PostSync", "post-upgrade": "PostSync"}
HELM_POLICIES = {"before-hook-creation": "BeforeHookCreation", "hook-succeeded": "HookSucceeded",
                 "hook-failed": "HookFailed"}


def _annotation(annotations, suffix):
    for prefix in PREFIXES:
        if prefix + suffix in annotations:
            return prefix + suffix, str(annotations[prefix + suffix])
    return None, None


def _csv(value):
    return [item.strip() for item in value.split(",") if item.strip()]


def wave_and_hook(source, obj):
    """Return (wave, hook phases or None, delete policies, reason to skip the object or None)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}

    def fail(message):
        raise GitOpsError("%s: %s: %s" % (source, describe(ref_of(obj)), message), file=source, object=ref_of(obj))

    key, text = _annotation(annotations, "sync-wave")
    if key is None and "helm.sh/hook-weight" in annotations:
        key, text = "helm.sh/hook-weight", str(annotations["helm.sh/hook-weight"])
    try:
        wave = int(text) if key else 0
    except ValueError:
        fail("annotation %s=%r is not an integer" % (key, text))

    hook, skip = None, None
    key, text = _annotation(annotations, "hook")
    if key:
        values = _csv(text)
        unknown = [v for v in values if v not in PHASES + UNSUPPORTED_PHASES]
        if unknown:
            fail("annotation %s has unknown phase(s) %s (known: %s)" % (key, ", ".join(unknown), ", ".join(PHASES)))
        hook = [v for v in values if v in PHASES]
        if not hook:
            skip = "%s=%s: not applied" % (key, text)
    elif annotations.get("helm.sh/hook") not in (None, "crd-install"):
        text = str(annotations["helm.sh/hook"])
        hook = sorted({HELM_PHASES[v] for v in _csv(text) if v in HELM_PHASES}, key=PHASES.index)
        if not hook:
            skip = "helm.sh/hook=%s has no sync equivalent: not applied (as in Argo CD)" % text

    policies = []
    key, text = _annotation(annotations, "hook-delete-policy")
    for value in _csv(text or ""):
        if value not in POLICIES:
            fail("annotation %s has unknown policy %r (known: %s)" % (key, value, ", ".join(POLICIES)))
        policies.append(value)
    for value in _csv(str(annotations.get("helm.sh/hook-delete-policy", ""))):
        if value not in HELM_POLICIES:
            fail("annotation helm.sh/hook-delete-policy has unknown policy %r" % value)
        policies.append(HELM_POLICIES[value])
    policies = sorted(set(policies), key=POLICIES.index)
    if hook and not policies:
        policies = ["BeforeHookCreation"]  # Argo CD's default for hooks
    return wave, (hook or None), (policies if hook else []), skip
