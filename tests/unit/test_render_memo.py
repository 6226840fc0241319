"""Renders remembered across runs (render/memo.py): the same input gives the same bundle without
parsing again; any other input, or other code, renders anew."""

import hashlib
import os
import shutil

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.bundle import canonical_json
from ansible_collections.gitops.k8s.plugins.module_utils.render import memo, render_bundle

COMMIT = "a" * 40


@pytest.fixture(name="checkout")
def checkout_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "checkout"
    (root / "app").mkdir(parents=True)
    (root / "app" / "config.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
                                              "data: {greeting: hello}\n")
    (root / "app" / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: token}\n"
                                              "stringData: {token: s3cr3t-value}\n")
    return str(root)


def params(namespace="web", **options):
    return {"path": "app", "namespace": namespace, "options": options}


def rendered(checkout, namespace="web", **options):
    return render_bundle(checkout, path="app", namespace=namespace, revision=COMMIT, **options)[1]


def test_a_remembered_render_comes_back_whole_without_parsing(checkout, monkeypatch):
    key = memo.key(COMMIT, params())
    assert memo.recall(key) is None
    bundle = rendered(checkout)
    memo.remember(key, bundle)

    monkeypatch.setattr("ansible_collections.gitops.k8s.plugins.module_utils.render.documents.load_documents",
                        lambda *args: pytest.fail("a remembered render parsed a file"))
    again = memo.recall(memo.key(COMMIT, params()))
    assert again.path == bundle.path and again.digest == bundle.digest and again.revision == COMMIT
    assert again.objects == bundle.objects  # the Secret opened again with the controller's key
    assert [o["stringData"]["token"] for o in again.objects if o["kind"] == "Secret"] == ["s3cr3t-value"]


def test_another_commit_namespace_option_or_code_is_another_render(checkout, monkeypatch):
    key = memo.key(COMMIT, params())
    memo.remember(key, rendered(checkout))
    others = [memo.key("b" * 40, params()), memo.key(COMMIT, params(namespace="other")),
              memo.key(COMMIT, params(labels={"team": "a"})),
              memo.key(COMMIT, params(substitute={"GREETING": "hi"}))]
    monkeypatch.setattr(memo, "_code_digest", lambda: "other code")
    others.append(memo.key(COMMIT, params()))
    assert len(set(others + [key])) == len(others) + 1
    assert all(memo.recall(other) is None for other in others)


def test_secret_options_do_not_show_in_the_key(checkout):
    # substitute values may be secrets: the key is an HMAC under the controller's key, not a hash
    # anyone could test guesses against
    key = memo.key(COMMIT, params(substitute={"PASSWORD": "hunter2"}))
    assert key == memo.key(COMMIT, params(substitute={"PASSWORD": "hunter2"}))
    assert hashlib.sha256(canonical_json(params(substitute={"PASSWORD": "hunter2"})).encode()).hexdigest() != key


def test_an_evicted_bundle_is_rendered_again(checkout):
    key = memo.key(COMMIT, params())
    bundle = rendered(checkout)
    memo.remember(key, bundle)
    shutil.rmtree(bundle.path)
    assert memo.recall(key) is None


def test_only_plain_manifests_in_the_bundle_cache_are_remembered(checkout, tmp_path):
    bundle = rendered(checkout, type="jinja")
    key = memo.key(COMMIT, params(type="jinja"))
    memo.remember(key, bundle)
    assert memo.recall(key) is None
    elsewhere = render_bundle(checkout, path="app", namespace="web", revision=COMMIT,
                              dest=str(tmp_path / "mine"))[1]
    key = memo.key(COMMIT, params(dest=str(tmp_path / "mine")))
    memo.remember(key, elsewhere)
    assert memo.recall(key) is None and os.path.isdir(elsewhere.path)
