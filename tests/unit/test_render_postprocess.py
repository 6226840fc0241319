"""Shared post-processing of rendered objects: validation, substitution, waves/hooks, scope, order."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render import postprocess
from ansible_collections.gitops.k8s.plugins.module_utils.render.documents import parse
from ansible_collections.gitops.k8s.plugins.module_utils.render.waves_hooks import wave_and_hook


def obj(kind, name, api="v1", ns=None, annotations=None, **extra):
    meta = {"name": name}
    if ns:
        meta["namespace"] = ns
    if annotations:
        meta["annotations"] = annotations
    return dict({"apiVersion": api, "kind": kind, "metadata": meta}, **extra)


def run(objects, **kw):
    return postprocess([("f.yaml", o) for o in objects], **kw)


def test_yaml_error_names_file_and_line():
    with pytest.raises(GitOpsError) as err:
        parse([("apps/web.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n")])
    assert str(err.value).startswith("apps/web.yaml:")
    assert err.value.details["file"] == "apps/web.yaml" and err.value.details["line"] >= 4


def test_lists_arrays_and_empty_documents():
    text = "---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n" \
           "---\n[{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}]\n---\n# only a comment\n"
    assert [o["metadata"]["name"] for _source, o in parse([("f.yaml", text)])] == ["a", "b"]


def test_dates_stay_strings():
    [(_source, cm)] = parse([("f.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {day: 2024-01-31}\n")])
    assert cm["data"]["day"] == "2024-01-31"


@pytest.mark.parametrize("bad, message", [
    ({"kind": "ConfigMap", "metadata": {"name": "a"}}, "ConfigMap a has no apiVersion"),
    ({"apiVersion": "v1", "metadata": {"name": "a"}}, "has no kind"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "ConfigMap has no metadata.name"),
    ({"foo": "bar"}, "has no apiVersion, kind, metadata"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "a-"}}, "only hooks may"),
])
def test_invalid_objects_name_the_file(bad, message):
    with pytest.raises(GitOpsError, match=message) as err:
        run([bad])
    assert str(err.value).startswith("f.yaml: ")


def test_generate_name_is_allowed_for_hooks():
    job = obj("Job", None, "batch/v1", annotations={"argocd.argoproj.io/hook": "PreSync"})
    job["metadata"] = {"generateName": "migrate-", "annotations": job["metadata"]["annotations"]}
    _objects, entries, _skipped = run([job, dict(job)])  # two of them do not collide
    assert [e["name"] for e in entries] == ["migrate-", "migrate-"]


def test_duplicates_are_refused_naming_both_files():
    with pytest.raises(GitOpsError, match="ConfigMap prod/a is defined twice: in one.yaml and in two.yaml"):
        postprocess([("one.yaml", obj("ConfigMap", "a", ns="prod")), ("two.yaml", obj("ConfigMap", "a"))],
                    namespace="prod")
    # the same name in another group or namespace is another object
    run([obj("Service", "a"), obj("Service", "a", api="serving.knative.dev/v1"), obj("Service", "a", ns="x")])


def test_namespace_defaults_skip_cluster_scoped_kinds_and_crd_scopes():
    crd = obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1",
              spec={"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget"}})
    objects, entries, _skipped = run([
        crd, obj("Widget", "w", "example.com/v1"), obj("Gadget", "g", "example.com/v1"),
        obj("ClusterRole", "r", "rbac.authorization.k8s.io/v1", ns="oops"), obj("ConfigMap", "c"), obj("ConfigMap", "d", ns="other"),
    ], namespace="prod")
    scope = {(e["kind"], e["name"]): e["namespace"] for e in entries}
    assert scope == {("CustomResourceDefinition", "widgets.example.com"): "", ("Widget", "w"): "",
                     ("Gadget", "g"): "prod", ("ClusterRole", "r"): "", ("ConfigMap", "c"): "prod",
                     ("ConfigMap", "d"): "other"}
    assert all("namespace" not in o["metadata"] for o in objects if o["kind"] in ("Widget", "ClusterRole"))


def test_labels_and_annotations_are_added_to_every_object():
    objects, _entries, _skipped = run([obj("ConfigMap", "a", annotations={"keep": "me"})], labels={"team": "a"},
                                      annotations={"owner": "ops"})
    assert objects[0]["metadata"]["labels"] == {"team": "a"}
    assert objects[0]["metadata"]["annotations"] == {"keep": "me", "owner": "ops"}


def test_canonical_order():
    _objects, entries, _skipped = run([
        obj("Deployment", "web", "apps/v1"), obj("Widget", "w", "example.com/v1"), obj("Service", "web"),
        obj("ConfigMap", "late", annotations={"gitops.k8s/sync-wave": "2"}),
        obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1"),
        obj("Namespace", "prod"), obj("ConfigMap", "b", ns="b"), obj("ConfigMap", "a", ns="b"),
        obj("Secret", "early", annotations={"argocd.argoproj.io/sync-wave": "-1"}),
    ])
    assert [(e["wave"], e["kind"], e["name"]) for e in entries] == [
        (-1, "Secret", "early"), (0, "Namespace", "prod"), (0, "CustomResourceDefinition", "widgets.example.com"),
        (0, "ConfigMap", "a"), (0, "ConfigMap", "b"), (0, "Service", "web"), (0, "Deployment", "web"),
        (0, "Widget", "w"), (2, "ConfigMap", "late"),
    ]


@pytest.mark.parametrize("annotations, expected", [
    ({}, (0, None, [], None)),
    ({"gitops.k8s/hook": "PreSync", "gitops.k8s/hook-delete-policy": "HookSucceeded"}, (0, ["PreSync"], ["HookSucceeded"], None)),
    ({"argocd.argoproj.io/hook": "Sync,PostSync", "argocd.argoproj.io/sync-wave": "3"}, (3, ["Sync", "PostSync"], ["BeforeHookCreation"], None)),
    ({"harnesscd.harnessproj.io/hook": "SyncFail", "harnesscd.harnessproj.io/sync-wave": "-2"}, (-2, ["SyncFail"], ["BeforeHookCreation"], None)),
    # our prefix wins over Argo CD's, Argo CD's over Helm's
    ({"gitops.k8s/sync-wave": "1", "argocd.argoproj.io/sync-wave": "9"}, (1, None, [], None)),
    ({"argocd.argoproj.io/hook": "PostSync", "helm.sh/hook": "pre-install"}, (0, ["PostSync"], ["BeforeHookCreation"], None)),
    # Helm mapped like Argo CD
    ({"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-5",
      "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"},
     (-5, ["PreSync"], ["BeforeHookCreation", "HookSucceeded"], None)),
    ({"helm.sh/hook": "post-install"}, (0, ["PostSync"], ["BeforeHookCreation"], None)),
    ({"helm.sh/hook": "crd-install"}, (0, None, [], None)),
    ({"helm.sh/hook": "test"}, (0, None, [], "helm.sh/hook=test has no sync equivalent: not applied (as in Argo CD)")),
    ({"argocd.argoproj.io/hook": "Skip"}, (0, None, [], "argocd.argoproj.io/hook=Skip: not applied")),
])
def test_wave_and_hook(annotations, expected):
    assert wave_and_hook("f.yaml", obj("Job", "j", "batch/v1", annotations=annotations)) == expected


@pytest.mark.parametrize("annotations, message", [
    ({"gitops.k8s/sync-wave": "first"}, "gitops.k8s/sync-wave='first' is not an integer"),
    ({"argocd.argoproj.io/hook": "PreSnyc"}, "unknown phase"),
    ({"gitops.k8s/hook": "Sync", "gitops.k8s/hook-delete-policy": "Always"}, "unknown policy 'Always'"),
])
def test_bad_annotations_name_file_and_object(annotations, message):
    with pytest.raises(GitOpsError, match="f.yaml: Job j: .*" + message):
        wave_and_hook("f.yaml", obj("Job", "j", "batch/v1", annotations=annotations))


def test_skipped_objects_are_reported_not_bundled():
    objects, entries, skipped = run([obj("Pod", "test", annotations={"helm.sh/hook": "test-success"}), obj("ConfigMap", "c")])
    assert [e["name"] for e in entries] == ["c"]
    assert skipped[0]["name"] == "test" and "not applied" in skipped[0]["reason"]


def test_substitution_like_flux():
    deploy = obj("Deployment", "web", "apps/v1", spec={"replicas": "${REPLICAS}", "template": {"metadata": {
        "labels": {"env": "${ENV:=dev}", "zone": "${ZONE:-a}", "literal": "$${KEEP}"}}}})
    objects, _entries, _skipped = run([deploy], substitute={"REPLICAS": 3})
    assert objects[0]["spec"]["replicas"] == 3  # typed after substitution, like Flux
    assert objects[0]["spec"]["template"]["metadata"]["labels"] == {"env": "dev", "zone": "a", "literal": "${KEEP}"}


def test_unresolved_variables():
    cm = obj("ConfigMap", "c", data={"a": "${MISSING}", "b": "x"})
    with pytest.raises(GitOpsError, match=r"f.yaml: ConfigMap c uses undefined variable\(s\) \$\{MISSING\}"):
        run([dict(cm)], substitute={})
    objects, _entries, _skipped = run([cm], substitute={}, substitute_strict=False)
    assert objects[0]["data"] == {"a": None, "b": "x"}  # replaced by nothing, as Flux does


def test_substitution_can_be_disabled_per_object_and_is_off_without_variables():
    script = obj("ConfigMap", "s", annotations={"kustomize.toolkit.fluxcd.io/substitute": "disabled"},
                 data={"run.sh": "echo ${HOME}"})
    assert run([script], substitute={})[0][0]["data"]["run.sh"] == "echo ${HOME}"
    assert run([obj("ConfigMap", "t", data={"run.sh": "echo ${HOME}"})])[0][0]["data"]["run.sh"] == "echo ${HOME}"
