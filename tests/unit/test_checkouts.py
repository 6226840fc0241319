"""Eviction of content-addressed checkouts: abandoned trees go, recently used ones stay."""

import os
import time

from ansible_collections.gitops.k8s.plugins.module_utils.sources.checkouts import Sources, _make_read_only


def tree(root, name, age):
    path = os.path.join(root, "checkouts", name)
    os.makedirs(os.path.join(path, "app"))
    with open(os.path.join(path, "app", "cm.yaml"), "w", encoding="utf-8") as handle:
        handle.write("kind: ConfigMap\n")
    _make_read_only(path)  # as exported: eviction must cope with read-only trees
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_checkouts_unused_for_a_week_are_evicted_and_recent_ones_kept(tmp_path):
    old = tree(str(tmp_path), "a" * 40, 8 * 24 * 3600)
    recent = tree(str(tmp_path), "b" * 40, 3600)
    Sources(cache=str(tmp_path)).evict()
    assert not os.path.exists(old)
    assert os.path.exists(os.path.join(recent, "app", "cm.yaml"))
    assert os.listdir(os.path.join(str(tmp_path), "checkouts")) == ["b" * 40]


def test_the_bundle_cache_is_scanned_for_eviction_at_most_every_ten_minutes(tmp_path):
    from ansible_collections.gitops.k8s.plugins.module_utils import bundle

    old = tmp_path / "old"
    old.mkdir()
    (old / bundle.INDEX).write_text("{}")
    then = time.time() - 2 * bundle.CACHE_MAX_AGE
    os.utime(old / bundle.INDEX, (then, then))
    bundle.evict_now_and_then(str(tmp_path))
    assert not old.exists()
    old.mkdir()
    (old / bundle.INDEX).write_text("{}")
    os.utime(old / bundle.INDEX, (then, then))
    bundle.evict_now_and_then(str(tmp_path))  # scanned a moment ago: left for the next scan
    assert old.exists()
