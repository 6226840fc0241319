# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Content-addressed sources for many applications: each repository fetched once per run, each
commit checked out once, into a directory nobody modifies.

  <cache>/git/<slug>-<hash>.git   one bare mirror per repository URL; fetched under a file lock
  <cache>/checkouts/<sha>/        the tree of one commit, exported from the mirror into a staging
                                  directory, made read-only, then renamed into place

Two applications of one repository at different versions (staging on ``main``, production on a
tag) get two directories, so neither can render the other's commit; a push and a reconcile
running at the same time share a checkout only when it is the same commit, which is read-only.

The mirror runs git through ``source.GitSession``: hooks, fsmonitor and ``ext::`` are off and
credentials never reach a URL, a file or an error.

Both caches are bounded (cache.py): each use marks a mirror or a checkout used; ``Sources.evict``
removes checkouts unused for CHECKOUT_MAX_AGE or beyond the CHECKOUT_MAX_COUNT most recently
used, and repositories as ``source.evict_repositories`` says, never what a run used within the
hour (nor a mirror whose lock a run holds). A fetch packs what it brought (``source.tidy``).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading

from .. import cache
from ..errors import GitOpsError
from .git import (GitSession, _has_commit, cache_root, default_dest, evict_repositories, file_lock, lock_path,
                  parse_ls_remote, repositories_folder, resolve, split_credentials, tidy)

CREDENTIAL_OPTIONS = ("username", "password", "key_file", "known_hosts", "accept_hostkey", "ca_file")
# Checkouts not used for this long, or beyond this many, are removed by the next run.
CHECKOUT_MAX_AGE = 7 * 24 * 3600
CHECKOUT_MAX_COUNT = 256


def _normalise_url(repo):
    url, username, password = split_credentials(repo)
    if "://" not in url and ":" not in url.split("/", 1)[0]:
        url = os.path.abspath(os.path.expanduser(url))  # a local path
    return url, username, password


class Sources:
    """Resolve and check out commits for one run; safe to use from several threads."""

    def __init__(self, cache=None, timeout=120):
        self.cache = cache or cache_root()
        self.timeout = timeout
        self._remotes = {}   # url -> (refs, head ref): one ls-remote per repository per run
        self._fetched = {}   # url -> set of shas known to be in the mirror
        self._checkouts = {}  # sha -> (path, commit info): one export per commit per run
        self._locks = {}     # url -> threading.Lock: one fetch of a repository at a time
        self._guard = threading.Lock()

    def _lock(self, url):
        with self._guard:
            return self._locks.setdefault(url, threading.Lock())

    def _session(self, url, credentials):
        creds = {k: (credentials or {}).get(k) for k in CREDENTIAL_OPTIONS}
        creds["accept_hostkey"] = bool(creds["accept_hostkey"])
        return GitSession(url, timeout=self.timeout, **creds)

    def mirror_path(self, url):
        return default_dest(url, self.cache) + ".git"

    def resolve(self, repo, version, credentials=None):
        """The commit ``version`` (branch, tag, semver range or sha) names in ``repo``:
        {repo, ref, revision}. The remote's refs are listed once per run."""
        url, username, password = _normalise_url(repo)
        credentials = dict(credentials or {}, **{k: v for k, v in (("username", username), ("password", password)) if v})
        with self._lock(url):
            if url not in self._remotes:
                session = self._session(url, credentials)
                self._remotes[url] = parse_ls_remote(session("ls-remote", "--symref", url, what="listing the refs"))
        refs, head_ref = self._remotes[url]
        sha, ref = resolve(version, refs, head_ref)
        if sha is None:  # an abbreviated sha: only the mirror can expand it
            sha = self._with_mirror(url, credentials, [(version, None)], lambda s: s(
                "rev-parse", "--verify", "%s^{commit}" % version, what="finding commit %s" % version))
        return {"repo": url, "ref": ref, "revision": sha}

    def checkout(self, resolved, credentials=None):
        """The read-only directory holding the tree of ``resolved`` (a result of ``resolve``), and
        the commit's author, date and message: (path, commit info)."""
        url, sha = resolved["repo"], resolved["revision"]
        with self._lock(url):
            if sha in self._checkouts:
                return self._checkouts[sha]
        final = os.path.join(self.cache, "checkouts", sha)

        def export(session):
            info = _commit_info(session, sha)
            if not os.path.isdir(final):
                _export(session, sha, final)
            return info

        info = self._with_mirror(url, dict(credentials or {}), [(sha, resolved.get("ref"))], export)
        os.utime(final)  # recently used: kept by eviction
        self._checkouts[sha] = (final, info)
        return final, info

    def is_ancestor(self, resolved, other, credentials=None):
        """True when the commit of ``resolved`` is an ancestor of commit ``other`` (it is older on the
        same line of history); None when the mirror does not have ``other`` (nothing can be said)."""
        url, sha = resolved["repo"], resolved["revision"]

        def compare(session):
            if not _has_commit(session, other):
                return None
            try:
                return session("merge-base", sha, other, what="comparing %s with %s" % (sha[:7], other[:7])) == sha
            except GitOpsError:
                return False  # no common history

        return self._with_mirror(url, dict(credentials or {}), [(sha, resolved.get("ref"))], compare)

    def _with_mirror(self, url, credentials, wanted, then):
        """Fetch what ``wanted`` [(sha or version, ref or None)] needs into the mirror, then ``then(session)``."""
        mirror = self.mirror_path(url)
        session = self._session(url, credentials)
        with self._lock(url), file_lock(lock_path(mirror), self.timeout):
            if not os.path.isdir(os.path.join(mirror, "objects")):
                os.makedirs(mirror, exist_ok=True)
                session("init", "--bare", "--quiet", "--template=", mirror)
                self._fetched.pop(url, None)  # evicted since this run fetched into it
            cache.touch(mirror)
            session.workdir = mirror
            known = self._fetched.setdefault(url, set())
            missing = [(sha, ref) for sha, ref in wanted if sha not in known and not _has_commit(session, sha)]
            if missing:
                refspecs = sorted({"+%s:%s" % (ref, ref) for _sha, ref in missing if ref})
                if any(ref is None for _sha, ref in missing):  # a commit by hash: every branch and tag
                    refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
                session("fetch", "--force", "--no-tags", "--quiet", url, *refspecs)
                tidy(session)
            known.update(sha for sha, _ref in wanted)
            return then(session)

    def evict(self):
        """Remove the checkouts and repositories no run has used for long (see the module docstring).
        A run touches each one it uses, so only abandoned ones go; each is renamed away first, so
        nobody sees half of one."""
        cache.evict(os.path.join(self.cache, "checkouts"), CHECKOUT_MAX_AGE, CHECKOUT_MAX_COUNT, remove=_remove_tree)
        evict_repositories(repositories_folder(self.cache))


def _commit_info(session, sha):
    text = session("show", "-s", "--format=%an <%ae>%x00%cn <%ce>%x00%cI%x00%G?%x00%B", sha, what="reading commit %s" % sha)
    author, committer, date, signed, message = (text.split("\0", 4) + [""] * 5)[:5]
    return {"author": author, "committer": committer, "date": date, "message": message.strip(), "signed": signed != "N"}


def _export(session, sha, final):
    """Write the tree of ``sha`` to ``final`` atomically and read-only (another run may win the race)."""
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".%s-" % sha[:12], dir=parent)
    index = staging + ".index"
    try:
        env = {"GIT_INDEX_FILE": index}  # a private index: the mirror itself is never changed
        session("read-tree", sha, env=env, what="reading the tree of %s" % sha)
        session("--work-tree=" + staging, "checkout-index", "--all", "--force", env=env,
                what="checking out %s" % sha)
        _make_read_only(staging)
        try:
            os.rename(staging, final)
        except OSError:
            if not os.path.isdir(final):
                raise
            _remove_tree(staging)  # the same commit was exported by a concurrent run
    except BaseException:
        _remove_tree(staging)
        raise
    finally:
        if os.path.exists(index):
            os.remove(index)


def _make_read_only(root):
    for folder, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        os.chmod(folder, 0o555)


def _remove_tree(root):
    if not os.path.lexists(root):
        return
    for folder, _dirs, _files in os.walk(root):
        os.chmod(folder, 0o755)
    shutil.rmtree(root, ignore_errors=True)
