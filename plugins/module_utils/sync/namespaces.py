# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Step 2 of apply: create the namespaces the bundle's objects live in that nothing else creates.

They are created before the plan so that every object is dry-run in its real namespace: quotas,
Pod Security and admission webhooks only answer there. Namespaces the bundle declares itself are
written by their wave like any object; check mode creates none.
"""

from __future__ import annotations

from ..errors import GitOpsError
from ..refs import group_of, ref_of


def prepare_namespaces(run):
    """Create the namespaces of the bundle's objects that exist neither in the cluster nor in the
    bundle (``managed_namespace_metadata`` on them); fails when ``create_namespaces`` is false."""
    wanted = {ref_of(o)["namespace"] for o in run.bundle.objects} - {""}
    in_bundle = {o["metadata"].get("name") for o in run.bundle.objects
                 if (group_of(o.get("apiVersion", "")), o.get("kind")) == ("", "Namespace")}
    namespaces = run.list_live(run.cluster.resource("v1", "Namespace"), None, sorted(wanted - in_bundle))
    existing = {ns["metadata"]["name"] for ns in namespaces}
    missing = sorted(wanted - in_bundle - existing)
    if missing and not run.opts.create_namespaces:
        raise GitOpsError("namespace(s) %s do not exist and create_namespaces is false" % ", ".join(missing),
                          namespaces=missing)
    if run.check:
        return
    for name in missing:
        try:
            # into the run's cached listing: the plan reads it again and must see them exist
            namespaces.append(run.cluster.apply(namespace_object(name, run.opts.managed_namespace_metadata),
                                                run.opts.field_manager, force=True))
        except GitOpsError as err:
            raise GitOpsError("cannot create namespace %s: %s" % (name, err), namespace=name,
                              changed=bool(run.namespaces))
        run.namespaces.append(name)


def namespace_object(name, metadata):
    """The Namespace ``name`` with the labels and annotations of ``managed_namespace_metadata``."""
    meta = {"name": name}
    for field in ("labels", "annotations"):
        if metadata.get(field):
            meta[field] = dict(metadata[field])
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
