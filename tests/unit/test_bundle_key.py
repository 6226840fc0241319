"""The controller's bundle key: made once, never seen half-written by a concurrent reader."""

import threading

from ansible_collections.gitops.k8s.plugins.module_utils import bundle


def test_concurrent_first_uses_all_get_the_whole_key(tmp_path, monkeypatch):
    # the first renders of a run seal Secrets in several threads at once: one makes the key, the
    # others must read all 32 bytes of it (an empty read failed a sync: "AESGCM key must be 128...")
    for round_ in range(40):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / str(round_)))
        keys, start = [], threading.Barrier(8)

        def first_use():
            start.wait()
            keys.append(bundle.controller_key(True))

        threads = [threading.Thread(target=first_use) for _thread in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [len(k) for k in keys] == [32] * 8 and len(set(keys)) == 1, [len(k) for k in keys]
