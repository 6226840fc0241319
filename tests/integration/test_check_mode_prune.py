"""--check with prune must not delete anything.

The API server ignores the ``dryRun`` query parameter of a DELETE that carries DeleteOptions in
its body: a "dry-run" prune deleted the objects it was asked only to preview.
"""

import uuid

from ansible_collections.gitops.k8s.plugins.module_utils.sync.apply import Options, apply
from ansible_collections.gitops.k8s.plugins.module_utils.bundle import Bundle, write_bundle
from ansible_collections.gitops.k8s.plugins.module_utils.refs import ref_of


def bundle_of(folder, objects):
    entries = [dict(ref_of(o), wave=0, hook=None, hook_delete_policy=[], source="x.yaml") for o in objects]
    write_bundle(folder, objects, entries)
    return Bundle.load(folder)


def test_check_mode_prune_previews_the_deletion_and_deletes_nothing(cluster, namespace, workdir):
    app = "check-prune-" + uuid.uuid4().hex[:6]
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                "data": {"k": name}} for name in ("keep", "drop")]
    apply(cluster, bundle_of(workdir + "/one", objects), app, Options(prune=True))
    try:
        preview = apply(cluster, bundle_of(workdir + "/two", objects[:1]), app, Options(prune=True), check=True)
        assert [r["name"] for r in preview["pruned"]] == ["drop"], preview
        assert cluster.get({"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "drop"}) is not None
    finally:
        cluster.delete({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "gitops-system", "name": "gitops-app-" + app})
