"""Pure logic of the inventory record and of the lease's expiry."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.cluster.records import (COMPRESSED_KEY, RECORD_KEY, OwnerIndex,
                                                                                 decode_record, encode_record, history_entry,
                                                                                 new_record, object_entry, object_name,
                                                                                 push_history, union_objects)
from ansible_collections.gitops.k8s.plugins.module_utils.refs import key_of


def ref(name, kind="ConfigMap", api="v1", ns="prod"):
    return {"apiVersion": api, "kind": kind, "namespace": ns, "name": name}


def test_union_keeps_recorded_entries_and_adds_new_objects_once():
    previous = [object_entry(ref("a"), "d-a", "5", "m"), object_entry(ref("b"), "d-b", "6", "m")]
    upcoming = [ref("b"), ref("c"), ref("c"), ref("web", "Deployment", "apps/v1")]
    merged = union_objects(previous, upcoming)
    assert [o["name"] for o in merged] == ["a", "b", "c", "web"]
    assert merged[0]["digest"] == "d-a" and merged[1]["resourceVersion"] == "6"
    assert merged[2]["digest"] is None, "not applied yet: no digest, so the fast path cannot trust it"


def test_union_matches_objects_across_api_versions():
    previous = [object_entry(ref("web", "Deployment", "apps/v1beta1"), "d")]
    assert len(union_objects(previous, [ref("web", "Deployment", "apps/v1")])) == 1


def test_history_is_newest_first_and_bounded():
    record = new_record("shop")
    for number in range(5):
        push_history(record, history_entry("rev%d" % number, "dg", "Succeeded", "pull", when=float(number)), 3)
    assert [h["revision"] for h in record["history"]] == ["rev4", "rev3", "rev2"]
    assert record["history"][0] == {"revision": "rev4", "digest": "dg", "time": 4.0, "result": "Succeeded",
                                    "trigger": "pull", "rollback": False}


def test_rollback_entries_say_what_they_roll_back():
    entry = history_entry("good", "dg", "Succeeded", "push", rollback_of="bad", message="health failed", duration=1.23456)
    assert entry["rollback"] is True and entry["rollback_of"] == "bad"
    assert entry["message"] == "health failed" and entry["duration"] == 1.235


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_records_round_trip_small_and_compressed(kind):
    small = dict(new_record("a"), objects=[object_entry(ref("x"), "d" * 64, "1", "m" * 64)])
    encoded = encode_record(small, kind)
    assert RECORD_KEY in encoded["data"]
    assert decode_record(dict(encoded, kind=kind)) == small

    big = dict(new_record("a"), objects=[object_entry(ref("cm-%05d" % i), "d" * 64, str(i), "m" * 64) for i in range(3000)])
    encoded = encode_record(big, kind)
    blob = encoded.get("binaryData", encoded.get("data"))[COMPRESSED_KEY]
    assert len(blob) < 1024 * 1024 / 2, "3,000 objects must fit well within the 1 MiB object limit"
    assert decode_record(dict(encoded, kind=kind)) == big


def test_unreadable_record_names_the_object():
    with pytest.raises(GitOpsError, match="ConfigMap gitops-system/gitops-app-a is unreadable"):
        decode_record({"kind": "ConfigMap", "metadata": {"namespace": "gitops-system", "name": "gitops-app-a"},
                       "data": {RECORD_KEY: "{not json"}})


def test_app_names_must_make_valid_object_names():
    assert object_name("guest-book.v2") == "gitops-app-guest-book.v2"
    for bad in ("Guestbook", "a_b", "", "-a"):
        with pytest.raises(GitOpsError, match="not a valid application name"):
            object_name(bad)


class Records:
    """The records as the cluster holds them now, and how many times all of them were read."""

    def __init__(self, *records):
        self.records, self.reads = list(records), 0

    def read_all(self):
        self.reads += 1
        return list(self.records)


def record(app, *names):
    return {"app": app, "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": n}
                                    for n in names]}


def keys(*names):
    return [key_of({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": n}) for n in names]


def test_owner_index_stands_while_only_this_run_claims():
    store = Records(record("a", "one"))
    index = OwnerIndex(store.read_all(), store, transitions=4)
    assert index.fresh(keys("two"), "b", 5) == {} and store.reads == 1  # the Lease's next holder: no read
    index.claimed("b", keys("two"))
    store.records.append(record("b", "two"))
    assert index.fresh(keys("three"), "c", 6) == {} and store.reads == 1  # still no read
    # an owner found is confirmed by reading again before anyone is refused (it may be stale)
    assert index.fresh(keys("two"), "c", 7) == {keys("two")[0]: "b"} and store.reads == 2
    assert index.owners(keys("one", "two"), "b") == {keys("one")[0]: "a"}


def test_owner_index_reads_again_after_another_runs_claim():
    store = Records(record("a", "one"))
    index = OwnerIndex(store.read_all(), store, transitions=4)
    store.records.append(record("x", "two"))  # another run claimed "two" (Lease acquired as 5)
    assert index.fresh(keys("two"), "b", 6) == {keys("two")[0]: "x"} and store.reads == 2
    assert index.fresh(keys("three"), "b", 7) == {} and store.reads == 2  # known again from there


def test_owner_index_reads_again_when_the_lease_was_held_or_absent_before():
    store = Records()
    assert OwnerIndex([], store, transitions=None).fresh(keys("one"), "a", 3) == {} and store.reads == 1
    assert OwnerIndex([], store, transitions=-1).fresh(keys("one"), "a", 0) == {} and store.reads == 1  # created now
    assert OwnerIndex([], store, transitions=-1).fresh(keys("one"), "a", 2) == {} and store.reads == 2


def test_owner_index_checks_a_stale_owner_before_answering():
    store = Records(record("a", "one"))
    index = OwnerIndex(store.read_all(), store, transitions=1)
    store.records = [record("a")]  # "a" pruned "one" since
    assert index.fresh(keys("one"), "b", 2) == {} and store.reads == 2


def test_owner_index_adoption_moves_the_object():
    store = Records(record("a", "one"))
    index = OwnerIndex(store.read_all(), store, transitions=1)
    index.claimed("b", keys("one"), moved=set(keys("one")))
    assert index.owners(keys("one"), "c") == {keys("one")[0]: "b"} and index.owners(keys("one"), "b") == {}
