"""Pure logic of data safety: duplicate YAML keys, lease expiry by local observation, which requests
are retried, record shards with realistic (random) digests."""

import json
import secrets

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.cluster import records as inventory
from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.render.documents import parse


# -- duplicate keys ----------------------------------------------------------------------------

def test_duplicate_key_is_an_error_naming_file_and_line():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\ndata: {x: '1'}\n"
    with pytest.raises(GitOpsError, match=r"^apps/cm.yaml:5: duplicate key 'name'") as err:
        parse([("apps/cm.yaml", text)])
    assert err.value.details == {"file": "apps/cm.yaml", "line": 5, "key": "name"}


def test_duplicate_key_in_a_flow_mapping_of_a_later_document():
    text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n" \
           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: '1', k: '2'}\n"
    with pytest.raises(GitOpsError, match=r"^f.yaml:9: duplicate key 'k'"):
        parse([("f.yaml", text)])


def test_merge_keys_may_override_and_same_key_in_sibling_mappings_is_fine():
    text = "base: &b {a: 1, c: 3}\nkind: X\nover:\n  <<: *b\n  a: 2\nother: {a: 5}\n"
    [(_src, doc)] = parse([("f.yaml", text)])
    assert doc["over"] == {"a": 2, "c": 3} and doc["other"] == {"a": 5}


# -- lease expiry by local observation ---------------------------------------------------------

def spec(holder="other", renew="2026-01-01T00:00:00.000000Z", duration=30):
    return {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": duration}


def test_lease_expiry_ignores_the_holders_clock():
    from ansible_collections.gitops.k8s.plugins.module_utils.cluster.lease import Observer

    watch = Observer()
    # a renewTime an hour in the past (holder's clock behind) is not expiry: only not seeing it change is
    assert not watch.expired(spec(renew="2000-01-01T00:00:00.000000Z"), now=100.0)
    assert not watch.expired(spec(renew="2000-01-01T00:00:01.000000Z"), now=125.0)   # renewed: seen changing
    assert not watch.expired(spec(renew="2000-01-01T00:00:01.000000Z"), now=150.0)   # 25 s without change
    assert watch.expired(spec(renew="2000-01-01T00:00:01.000000Z"), now=156.0)       # 31 s without change
    # a renewTime far in the future (holder's clock ahead) that stops changing expires just the same
    future = Observer()
    assert not future.expired(spec(renew="2999-01-01T00:00:00.000000Z", duration=2), now=10.0)
    assert future.expired(spec(renew="2999-01-01T00:00:00.000000Z", duration=2), now=12.5)
    assert Observer().expired(spec(holder=None), now=0.0), "a released lease is free at once"


# -- which requests are retried ----------------------------------------------------------------

@pytest.mark.parametrize("method, status, sent, retry", [
    ("GET", 503, True, True), ("PATCH", 500, True, True), ("PUT", 502, True, True), ("DELETE", 504, True, True),
    ("POST", 429, True, True),    # 429: the server did not act on it
    ("POST", 503, True, False),   # a create may have happened: retrying could create twice
    ("POST", None, False, True),  # never reached the server (connection refused)
    ("POST", None, True, False),  # reset after sending: unknown
    ("PATCH", None, True, True),  # server-side apply is idempotent
    ("GET", 404, True, False), ("PATCH", 409, True, False), ("PATCH", 422, True, False),
])
def test_retry_only_what_is_safe(method, status, sent, retry):
    from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import retryable

    assert retryable(method, status, sent) is retry


def test_backoff_is_bounded_jittered_and_honours_retry_after():
    from ansible_collections.gitops.k8s.plugins.module_utils.cluster.client import backoff

    delays = [backoff(n) for n in range(10) for _sample in range(20)]
    assert max(delays) <= 8.0 and min(delays) > 0
    assert len({round(d, 6) for d in delays}) > 100, "jitter: delays differ"
    assert backoff(0, retry_after="3") == 3.0
    assert backoff(0, retry_after="3600") <= 30.0, "a huge Retry-After is capped"


# -- the record scales -------------------------------------------------------------------------

def random_objects(count):
    return [inventory.object_entry({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "team-%03d" % (i % 300),
                                    "name": "service-%05d" % i},
                                   secrets.token_hex(32), str(10_000_000 + i), secrets.token_hex(32), secrets.token_hex(18))
            for i in range(count)]


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_20000_objects_of_random_digests_are_sharded_under_the_object_limit(kind):
    record = dict(inventory.new_record("big"), objects=random_objects(20_000))
    head, shards = inventory.split_record(record, kind)
    assert len(shards) >= 2
    for body in [head] + list(shards.values()):
        assert len(json.dumps(body)) < 900 * 1024, "every stored object stays well below the 1 MiB limit"
    assert inventory.join_record(head, shards) == record


def test_a_small_record_stays_in_one_object():
    record = dict(inventory.new_record("small"), objects=random_objects(10))
    head, shards = inventory.split_record(record, "ConfigMap")
    assert shards == {} and inventory.join_record(head, {}) == record


def test_unchanged_shards_keep_their_names():
    objects = random_objects(6000)
    first = inventory.split_record(dict(inventory.new_record("a"), objects=objects), "ConfigMap")[1]
    objects[-1] = dict(objects[-1], digest=secrets.token_hex(32))
    second = inventory.split_record(dict(inventory.new_record("a"), objects=objects), "ConfigMap")[1]
    assert len(set(first) - set(second)) == 1, "one object changed: one shard is new, the others are reused"


# -- keyed digests of Secrets ------------------------------------------------------------------

def test_secret_digests_are_keyed_and_others_are_not():
    ref = {"apiVersion": "v1", "kind": "Secret", "namespace": "a", "name": "db"}
    plain = "ab" * 32
    one, two = inventory.record_digest(ref, plain, b"k1"), inventory.record_digest(ref, plain, b"k2")
    assert one != plain and one != two and one.startswith("hmac-sha256:")
    assert inventory.record_digest(dict(ref, kind="ConfigMap"), plain, b"k1") == plain
    assert inventory.record_digest(ref, None, b"k1") is None


# -- bundles: Secrets sealed, cache bounded ----------------------------------------------------

def _bundle_objects():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "a"},
              "stringData": {"password": "correct-horse-battery-staple"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}, "data": {"k": "v"}}
    refs = [{"apiVersion": "v1", "kind": k, "namespace": "a", "name": n} for k, n in (("Secret", "db"), ("ConfigMap", "c"))]
    return [secret, cm], refs


def test_secrets_are_never_written_in_clear_and_load_back(tmp_path, monkeypatch):
    from ansible_collections.gitops.k8s.plugins.module_utils.bundle import (
        Bundle, MANIFEST, OBJECTS, object_digest, write_bundle)

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    objects, entries = _bundle_objects()
    write_bundle(str(tmp_path / "b"), [dict(o) for o in objects], entries)
    for name in (MANIFEST, OBJECTS):
        on_disk = (tmp_path / "b" / name).read_text()
        assert "correct-horse-battery-staple" not in on_disk and "password" not in on_disk, name
    on_disk = (tmp_path / "b" / MANIFEST).read_text()
    assert "name: c" in on_disk and "k: v" in on_disk, "other objects stay readable"
    key = tmp_path / "cache" / "gitops-k8s" / "keys" / "bundle.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    loaded = Bundle.load(str(tmp_path / "b"))
    assert loaded.objects == objects and loaded.entries[0]["digest"] == object_digest(objects[0])

    key.unlink()  # another controller (or the key removed): a clear error, no garbage
    with pytest.raises(GitOpsError, match="sealed Secrets .* render it again"):
        Bundle.load(str(tmp_path / "b"))


def test_cache_eviction_by_age_and_count_spares_bundles_in_use(tmp_path):
    import os

    from ansible_collections.gitops.k8s.plugins.module_utils import bundle

    now = 1_000_000.0
    ages = {"fresh": 10, "in-use-but-many": 1800, "old": 2 * 86400, "stale-beyond-count": 7200}
    for name, age in ages.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / bundle.INDEX).write_text("{}")
        os.utime(tmp_path / name / bundle.INDEX, (now - age, now - age))
    (tmp_path / ".render-staging").mkdir()
    original = bundle.CACHE_MAX_BUNDLES
    bundle.CACHE_MAX_BUNDLES = 1
    try:
        bundle.evict(str(tmp_path), now=now)
    finally:
        bundle.CACHE_MAX_BUNDLES = original
    assert sorted(os.listdir(tmp_path)) == [".render-staging", "fresh", "in-use-but-many"]


def test_render_options_that_may_carry_secrets_are_no_log():
    from ansible_collections.gitops.k8s.plugins.modules.render import ARGSPEC

    for name in ("values", "vars", "substitute", "ext_vars", "tla"):
        assert ARGSPEC[name].get("no_log") is True, name


# -- prune guards ------------------------------------------------------------------------------

def test_prune_guards_for_namespaces_and_crds():
    from ansible_collections.gitops.k8s.plugins.module_utils.sync.prune_guards import guarded, recreated, refusal

    ns = {"apiVersion": "v1", "kind": "Namespace", "namespace": "", "name": "shop"}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "namespace": "",
           "name": "widgets.example.com"}
    allow = {"metadata": {"annotations": {"gitops.k8s/prune": "allow"}}}
    crd_live = dict(allow, spec={"group": "example.com", "names": {"kind": "Widget"}})
    other = [{"app": "billing", "objects": [{"apiVersion": "example.com/v1", "kind": "Widget", "namespace": "shop",
                                             "name": "w"}]}]
    assert guarded(ns) and guarded(crd) and not guarded(dict(ns, kind="ConfigMap"))
    assert "opts in" in refusal(ns, {"metadata": {}}, [], "gitops-system")
    assert refusal(ns, allow, [], "gitops-system") is None
    assert "app billing" in refusal(ns, allow, other, "gitops-system")
    assert "app billing" in refusal(crd, crd_live, other, "gitops-system")
    assert refusal(crd, dict(crd_live, spec={"group": "example.com", "names": {"kind": "Gadget"}}), other, "x") is None
    assert "inventory namespace" in refusal(dict(ns, name="gitops-system"), allow, [], "gitops-system")
    assert recreated({"uid": "a"}, {"metadata": {"uid": "b"}}) and not recreated({"uid": "a"}, {"metadata": {"uid": "a"}})
    assert not recreated({}, {"metadata": {"uid": "b"}}), "records written before uids were kept: no guard"
