# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Step 5 of apply, the objects: each wave written in order, and waited for.

In a wave, Namespaces and CRDs are written first: the rest may live in them or be of their kinds.
Once a wave's CRDs are Established, the bundle's custom resources of their kinds (not served at
plan time, so not dry-run then) are dry-run before anything else of that wave is written, so
the bundle stays validated before its objects are written. How each object is written (apply,
replace, delete and recreate, takeover from client-side apply) the plan decided (compare.py,
ownership.py). The Sync hooks of each wave are hooks.py's.
"""

from __future__ import annotations

import time

from ..cluster.client import ApiError
from ..concurrency import each
from ..errors import GitOpsError
from ..masking import redact
from ..refs import describe, group_of, key_of
from .compare import dry_run, prepare_write, rejected_error, write
from .ownership import migration_patch

FIRST_KINDS = {("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition")}


def waves(run):
    """Every wave that has an object or a Sync hook, in order."""
    hooks = {e.get("wave", 0) for e, _obj in run.hook_pairs if "Sync" in (e.get("hook") or ())}
    return sorted({i.wave for i in run.plan.items} | hooks)


def apply_wave(run, wave, items):
    """Write the changes among ``items`` (the objects of ``wave``): Namespaces and CRDs, then the
    rest concurrently; with wait_waves, wait for the whole wave to be healthy."""
    changes = [i for i in items if i.action in ("create", "update")]
    first = [i for i in changes if (group_of(i.ref["apiVersion"]), i.ref["kind"]) in FIRST_KINDS]
    rest = [i for i in changes if i not in first]
    for batch in (first, rest):
        errors = each(run.opts.concurrency, lambda i: (i, write_object(run, i)), batch)
        failed = [(i, e) for i, e in errors if e]
        if failed:
            raise GitOpsError(
                "wave %s: %d object(s) failed to apply:\n  %s" % (
                    wave, len(failed), "\n  ".join("%s (%s): %s" % (describe(i.ref), i.source, e) for i, e in failed)),
                failed=[dict(i.ref, source=i.source, message=e) for i, e in failed], wave=wave,
            )
        crds = [i.ref for i in batch if i.ref["kind"] == "CustomResourceDefinition"]
        if crds:
            wait(run, crds, "the CustomResourceDefinitions of wave %s" % wave)
            run.cluster.forget_discovery()
            validate_custom_resources(run, wave)
        if run.lease:
            run.lease.check()
    if wait_waves(run):
        wait(run, [i.ref for i in items], "wave %s" % wave)


def write_object(run, item):
    """Write one object as the plan decided; returns an error message (secrets masked) or None."""
    try:
        if item.takeover:
            take_over(run, item)
        if item.method == "recreate":
            run.cluster.delete(item.ref, propagation="Foreground")
            wait_gone(run, [item.ref], "%s (recreated)" % describe(item.ref))
        out = write(run.cluster, item, run.plan.settings)
    except GitOpsError as err:
        return redact(str(err), (item.obj,))
    run.applied[item.key] = out
    if item.method == "recreate":
        run.recreated.append(item.ref)
    return None


def take_over(run, item, attempts=5):
    """Move the client-side managers' fields to ours. The patch is guarded by the resourceVersion
    and controllers write status meanwhile: on a conflict, read the object again and retry."""
    live = item.live
    for attempt in range(attempts):
        try:
            run.cluster.json_patch(item.ref, migration_patch(live, run.opts.field_manager), run.opts.field_manager)
            return
        except ApiError as err:  # the "test" of the resourceVersion failed (422), or 409
            if err.status not in (409, 422) or attempt == attempts - 1:
                raise
        live = run.cluster.get(item.ref)
        if live is None:
            return  # deleted meanwhile: the apply creates it, owned by us


def validate_custom_resources(run, wave):
    """Dry-run the bundle's custom resources whose CRD is now Established, before anything else of
    their wave (or a later one) is written."""
    pending = [i for i in run.plan.items if i.resource is None and i.wave >= wave]
    ready = []
    for item in pending:
        try:
            item.resource = run.cluster.resource(item.ref["apiVersion"], item.ref["kind"])
        except GitOpsError:
            continue  # its CRD comes in a later wave
        prepare_write(item, run.plan.settings)
        ready.append(item)
    rejected = dry_run(run.cluster, ready, run.plan.settings)
    if rejected:
        raise rejected_error(rejected, run.bundle.path, "only the CustomResourceDefinitions of wave %s and the "
                             "waves before it were written" % wave)
    validated = {i.key for i in ready}
    run.plan.unvalidated = [r for r in run.plan.unvalidated if key_of(r) not in validated]


def wait_waves(run):
    """Whether each wave is waited healthy before the next: ``wait_waves``, else when the bundle
    has an order to keep (more than one wave, or hooks)."""
    if run.opts.wait_waves is not None:
        return run.opts.wait_waves
    return len({i.wave for i in run.plan.items}) > 1 or bool(run.hook_pairs)


def wait(run, refs, what):
    """Wait until ``refs`` are healthy (fail fast); fails naming ``what`` otherwise."""
    from ..health.watch import wait_healthy  # the health_wait engine; imported here to keep apply importable alone

    outcome = wait_healthy(run.cluster, refs, timeout=run.opts.timeout, fail_fast=True,
                           custom_health=run.opts.custom_health)
    if not outcome["healthy"]:
        raise GitOpsError("%s did not become healthy: %s" % (what, outcome["summary"]),
                          health=outcome.get("resources"))


def wait_gone(run, refs, what):
    """Wait until every one of ``refs`` is deleted (a name can be reused only then)."""
    deadline = time.monotonic() + run.opts.timeout
    for ref in refs:
        while run.cluster.get(ref) is not None:
            if time.monotonic() > deadline:
                raise GitOpsError("%s is still being deleted after %ss" % (what, run.opts.timeout))
            time.sleep(0.2)
