# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Bounded caches under ``~/.cache/gitops-k8s`` (``source.cache_root``): one eviction rule for all.

A cache is a folder of entries (folders: a bundle, an unpacked chart, a Git repository, a
checkout). Every use of an entry refreshes its time of last use (an mtime), and ``evict`` removes
the entries unused for a maximum age and the least recently used beyond a maximum count, never
one used within IN_USE: a run comes back to what it fetched, pulled or rendered within minutes
(and a mirror gone meanwhile is fetched again).

  cache        entry                                    limits (beside the code that keeps it)
  bundles/     one rendered bundle                      bundle.CACHE_MAX_AGE, CACHE_MAX_BUNDLES
  rendered/    the memo of one render                   bundle.CACHE_MAX_AGE (render/memo.py)
  charts/      one unpacked chart archive               chart_source.CHART_MAX_AGE, CHART_MAX_COUNT
  git/         one repository: a mirror of the engine,  source.REPOSITORY_MAX_AGE, REPOSITORY_MAX_COUNT
               git_fetch's clone in its default place   (and never while a run holds its lock)
  checkouts/   the tree of one commit                   checkouts.CHECKOUT_MAX_AGE, CHECKOUT_MAX_COUNT

docs/git_fetch_and_render.md ("The controller's caches") gives the figures.
An entry is renamed away before it is deleted, so a reader sees it whole or not at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

# Entries used within this many seconds are never evicted, whatever the count.
IN_USE = 3600
# A cache is scanned at most this often (see ``now_and_then``).
EVICT_EVERY = 600


def now_and_then(folder, sweep):
    """``sweep(folder)`` at most once every EVICT_EVERY seconds: a run renders or pulls many
    entries, and each full scan of a large cache costs as much as a render."""
    marker = os.path.join(folder, ".last-eviction")
    try:
        if time.time() - os.path.getmtime(marker) < EVICT_EVERY:
            return
    except OSError:
        pass  # never evicted yet
    os.makedirs(folder, exist_ok=True)
    with open(marker, "a", encoding="utf-8"):
        os.utime(marker)
    sweep(folder)


def touch(path):
    """Mark the entry ``path`` used now (kept by eviction)."""
    try:
        os.utime(path)
    except OSError:
        pass  # evicted or never made: the caller finds out when it reads it


def evict(folder, max_age, max_count=None, last_used=os.path.getmtime, hold=None, remove=None, now=None):
    """Remove the entries (sub-folders) of ``folder`` unused for ``max_age`` seconds and the least
    recently used beyond ``max_count``, keeping any used within IN_USE.

    ``last_used(path)`` gives an entry's time of last use (default its mtime); ``hold(path)``, a
    context manager, yields whether the entry may go now and keeps it so until the entry is
    renamed away (a Git repository: its lock, free); ``remove(path)`` deletes a renamed entry
    (default ``shutil.rmtree``). Names starting with ``.`` (staging, evicted, markers) are skipped.
    """
    now = time.time() if now is None else now
    found = []
    try:
        with os.scandir(folder) as listing:
            entries = [e for e in listing if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    except OSError:
        return  # no cache yet
    for entry in entries:
        try:
            found.append((last_used(entry.path), entry.name))
        except OSError:
            continue  # removed meanwhile
    found.sort(reverse=True)
    for rank, (used, name) in enumerate(found):
        if now - used < IN_USE or (now - used < max_age and (max_count is None or rank < max_count)):
            continue
        path = os.path.join(folder, name)
        doomed = os.path.join(folder, ".evicted-%s-%d" % (name, os.getpid()))
        try:
            with (hold or _free)(path) as free:
                # used since the scan (under ``hold``, a use in progress is over): kept
                if not free or last_used(path) != used:
                    continue
                os.rename(path, doomed)
        except OSError:
            continue  # evicted by another process meanwhile
        (remove or _rmtree)(doomed)


@contextlib.contextmanager
def _free(_path):
    yield True


def _rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
