# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Git sources: fetch one commit of a repository into a local cache, safely.

The repository is untrusted input. Every git command runs with hooks disabled
(``core.hooksPath=/dev/null``), no fsmonitor and no ``ext::`` transport, and without the global
and system git config (a user's ``credential.helper`` or ``url.*.insteadOf`` must not apply);
credentials are never written into a URL, a config file or a result, and go only to the
repository's own host (never to a submodule or redirect elsewhere); one file lock per cache
directory serialises concurrent runs. The checkout is detached at the resolved commit and cleaned, so
nothing from an older revision survives.

Resolution works on the remote's ref list (``git ls-remote``), so check mode can say what
would change without touching the checkout.

The default ``dest`` is a folder of ``<cache>/git/``, beside the per-cluster engine's mirrors
(checkouts.py). Each fetch marks its repository used and packs what it fetched (``tidy``); a
repository of that folder unused for REPOSITORY_MAX_AGE, or beyond the REPOSITORY_MAX_COUNT most
recently used, is evicted (cache.py), never one used within the hour or whose lock a run holds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import tempfile
import time
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from .. import cache
from ..deps import import_library
from ..errors import GitOpsError

# Passed as ``-c`` to every git call: repository content must never run code here.
SAFE_CONFIG = [
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "protocol.ext.allow=never",
    "submodule.recurse=false",
    "advice.detachedHead=false",
    "gc.auto=0",
]

# git runs it as `<helper> get|store|erase`; it answers `get` only, from the environment.
CREDENTIAL_HELPER = ('!f() { test "$1" = get || exit 0; printf "username=%s\\npassword=%s\\n" '
                     '"$GITOPS_GIT_USERNAME" "$GITOPS_GIT_PASSWORD"; }; f')

HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")
REPOSITORY_MAX_AGE = 30 * 24 * 3600
REPOSITORY_MAX_COUNT = 256

# what makes a version a semver range: an operator, a wildcard component, several clauses
RANGE = re.compile(r"^\s*[<>=!~^*]|(?:^|\.)[xX*](?:\.|$)|\s|\|\|")


def cache_root():
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gitops-k8s")


def split_credentials(url, username=None, password=None):
    """Return (url without user:password, username, password); explicit options win over the URL's."""
    if "://" not in url or not url.lower().startswith(("http://", "https://")):
        return url, username, password
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, username, password
    userinfo, _at, host = parts.netloc.rpartition("@")
    user, _colon, secret = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, username or user or None, password or secret or None


def repositories_folder(root=None):
    """Where Git repositories are cached: git_fetch's default ``dest`` and the engine's mirrors."""
    return os.path.join(root or cache_root(), "git")


def default_dest(url, root=None):
    """A cache directory keyed by the credential-free URL."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1]).strip("-")[:40] or "repo"
    if slug.endswith(".git"):
        slug = slug[:-4]
    return os.path.join(repositories_folder(root),
                        "%s-%s" % (slug, hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]))


def lock_path(repository):
    """The file ``file_lock`` locks for the repository folder ``repository``."""
    return repository.rstrip("/") + ".lock"


def _try_lock(handle):
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def file_lock(path, timeout):
    """Hold an exclusive lock on ``path`` (created if missing); wait at most ``timeout`` seconds."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                raise GitOpsError("another run holds the lock on %s for more than %ss" % (path, timeout), lock=path)
            time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def repository_free(repository):
    """Yields True holding the repository's lock when no run holds it, else False at once."""
    with open(lock_path(repository), "a") as handle:
        if not _try_lock(handle):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def evict_repositories(folder):
    """The repositories of ``folder`` (see ``repositories_folder``) unused for REPOSITORY_MAX_AGE, or
    beyond the REPOSITORY_MAX_COUNT most recently used, are removed; never one used within
    cache.IN_USE or whose lock a run holds (it is removed under that lock)."""
    cache.evict(folder, REPOSITORY_MAX_AGE, REPOSITORY_MAX_COUNT, hold=repository_free)


def tidy(session):
    """git's own housekeeping after a fetch: loose objects and small packs are packed (and
    unreachable ones pruned) once they pass git's thresholds, so a repository fetched every few
    minutes for a year stays the size of its history. SAFE_CONFIG turns the automatic gc off
    for every other command, as it would detach and outlive the run; here it runs in the
    foreground, under the repository's lock."""
    session("gc", "--auto", "--quiet", config=["gc.auto=6700", "gc.autoDetach=false"],
            what="packing the fetched objects")


# -- version resolution ------------------------------------------------------------------------

def parse_ls_remote(text):
    """``git ls-remote --symref`` output -> ({ref: sha}, HEAD's branch ref or None). Tags are peeled."""
    refs, head_ref = {}, None
    for line in text.splitlines():
        left, _tab, ref = line.partition("\t")
        if left.startswith("ref: "):
            if ref == "HEAD":
                head_ref = left[5:]
            continue
        if ref.endswith("^{}"):
            refs[ref[:-3]] = left  # the commit an annotated tag points at
        elif ref not in refs:
            refs[ref] = left
    return refs, head_ref


def _semver_specifier(expression):
    """Translate a semver range (``>=1.2.0 <2.0.0``, ``^1.2``, ``~1.2.3``, ``1.x``) to a SpecifierSet."""
    from packaging.specifiers import SpecifierSet

    clauses = []
    for token in re.findall(r"(?:[<>=!~^]+\s*)?[^\s,<>=!~^]+", expression):
        op, version = re.match(r"([<>=!~^]*)\s*(.*)", token).groups()
        version = version.lstrip("vV")
        numbers = [n for n in version.split(".") if n not in ("x", "X", "*")]
        if version in ("*", "x", "X"):
            continue
        if op in ("", "=", "==") and len(numbers) < len(version.split(".")):
            clauses.append("==%s.*" % ".".join(numbers))
        elif op in ("^", "~"):
            parts = [int(n) for n in numbers] + [0] * (3 - len(numbers))
            if op == "~":
                upper = [parts[0] + 1, 0, 0] if len(numbers) == 1 else [parts[0], parts[1] + 1, 0]
            else:
                first = next((i for i, n in enumerate(parts) if n), len(numbers) - 1 if numbers else 0)
                upper = parts[:first] + [parts[first] + 1] + [0] * (2 - first)
            clauses += [">=%s" % ".".join(map(str, parts)), "<%s" % ".".join(map(str, upper))]
        else:
            clauses.append("%s%s" % ("==" if op in ("", "=") else op, version))
    return SpecifierSet(",".join(clauses))


def newest_matching_tag(expression, tags):
    """The tag (name) with the highest version satisfying the range; alternatives split by ``||``."""
    from packaging.version import InvalidVersion, Version

    try:
        specifiers = [_semver_specifier(part) for part in expression.split("||")]
    except ValueError as err:  # packaging.specifiers.InvalidSpecifier is one
        raise GitOpsError("version %r is not a valid semver range: %s" % (expression, err), version=expression)
    prereleases = "-" in expression  # like npm: a prerelease tag only matches a range that names one
    best = None
    for tag in tags:
        try:
            version = Version(tag)
        except InvalidVersion:
            continue
        matches = any(spec.contains(version, prereleases=prereleases) for spec in specifiers)
        if matches and (best is None or version > best[0]):
            best = (version, tag)
    return best[1] if best else None


def resolve(version, refs, head_ref):
    """Resolve ``version`` against the remote's refs.

    Returns (sha or None, ref or None): the ref is what to fetch; a sha without a ref means
    "a commit given by hash" (None when it is abbreviated and must be found after fetching).
    """
    if not version or version == "HEAD":
        if not head_ref or head_ref not in refs:
            raise GitOpsError("the remote has no HEAD branch; set version", version=version)
        return refs[head_ref], head_ref
    for ref in (version, "refs/heads/" + version, "refs/tags/" + version):
        if ref.startswith("refs/") and ref in refs:
            return refs[ref], ref
    if HEX.match(version):
        return (version.lower() if len(version) == 40 else None), None
    if RANGE.search(version.strip()):
        tags = [ref[len("refs/tags/"):] for ref in refs if ref.startswith("refs/tags/")]
        tag = newest_matching_tag(version, tags)
        if tag is None:
            raise GitOpsError("no tag matches the range %r (tags: %s)" % (version, ", ".join(sorted(tags)[:20]) or "none"),
                              version=version)
        return refs["refs/tags/" + tag], "refs/tags/" + tag
    raise GitOpsError("version %r is neither a branch, a tag, a commit nor a semver range of the remote" % version,
                      version=version)


# -- git plumbing --------------------------------------------------------------------------------

class GitSession:
    """Runs git through GitPython with the safe config, the auth environment and redaction applied."""

    def __init__(self, url, timeout=120, username=None, password=None, key_file=None, known_hosts=None,
                 accept_hostkey=False, ca_file=None):
        self.git_module = import_library("git", "GitPython", "gitops.k8s.git_fetch")
        self.url = url
        self.timeout = timeout
        self.workdir = None
        self.redact = [s for s in (password,) if s]
        # Only this run's own settings: no global or system config, no config or askpass handed
        # down through the environment.
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
               "GIT_CONFIG_PARAMETERS": "", "GIT_CONFIG_COUNT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
        self.config = list(SAFE_CONFIG) + ["credential.helper="]
        if password:
            # A credential helper scoped to the repository's scheme://host:port: git asks it for
            # that origin only, so a submodule or a redirect to another host gets nothing. It
            # echoes the environment: the secret is never on disk, in argv or in a config file.
            parts = urlsplit(url)
            self.config.append("credential.%s://%s.helper=%s" % (parts.scheme, parts.netloc, CREDENTIAL_HELPER))
            env.update(GITOPS_GIT_USERNAME=username or "git", GITOPS_GIT_PASSWORD=password)
        if ca_file:
            env["GIT_SSL_CAINFO"] = ca_file
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=%s" % ("accept-new" if accept_hostkey else "yes")]
        if known_hosts:
            ssh += ["-o", "UserKnownHostsFile=%s" % known_hosts]
        if key_file:
            ssh += ["-i", key_file, "-o", "IdentitiesOnly=yes"]
        env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(a) for a in ssh)
        self.env = env

    def scrub(self, text):
        for secret in self.redact:
            text = text.replace(secret, "********")
        return text

    def __call__(self, *args, config=(), env=None, what=None):
        """Run ``git <args>`` in the work dir; a failure names the repository (never its credentials)."""
        argv = ["git"]
        for item in self.config + list(config):
            argv += ["-c", item]
        try:
            return self.git_module.Git(self.workdir).execute(
                argv + list(args), env=dict(self.env, **(env or {})), kill_after_timeout=self.timeout)
        except self.git_module.GitCommandError as err:
            stderr = self.scrub(str(err.stderr or "").strip())
            stderr = re.sub(r"^stderr: '?|'$", "", stderr, flags=re.M).strip()
            raise GitOpsError("%s of %s failed: %s" % (what or "git " + args[0], self.url, stderr or "exit %s" % err.status),
                              repo=self.url, stderr=stderr)

    def open(self, dest):
        """Open (creating if needed) the cache repository at ``dest`` and run later commands there."""
        if not os.path.isdir(os.path.join(dest, ".git")):
            if os.path.isdir(dest) and os.listdir(dest):
                raise GitOpsError("dest %s exists and is not a git checkout; refusing to overwrite it" % dest, path=dest)
            os.makedirs(dest, exist_ok=True)
            self("init", "--quiet", "--template=", dest)  # no template hooks copied in
        self.workdir = dest
        repo = self.git_module.Repo(dest)
        repo.git.set_persistent_git_options(c=self.config)  # GitPython's own calls (reading commits) too
        return repo


def _commit_info(repo, sha):
    commit = repo.commit(sha)
    return {
        "author": "%s <%s>" % (commit.author.name, commit.author.email),
        "committer": "%s <%s>" % (commit.committer.name, commit.committer.email),
        "date": commit.committed_datetime.isoformat(),
        "message": commit.message.strip(),
        "signed": bool(commit.gpgsig),
    }


def _has_commit(session, sha):
    try:
        session("cat-file", "-e", "%s^{commit}" % sha)
        return True
    except GitOpsError:
        return False


def _verify_signature(session, sha, allowed_signers, gpg_keyring):
    """Refuse ``sha`` unless it carries a valid SSH signature from allowed_signers or a GPG one from the keyring."""
    if not allowed_signers and not gpg_keyring:
        raise GitOpsError("verify_signature=head needs allowed_signers (SSH signatures) or gpg_keyring", repo=session.url)
    gnupghome = tempfile.mkdtemp(prefix="gitops-k8s-gpg-")
    try:
        if gpg_keyring:
            from ..cli import run_command
            run_command(["gpg", "--batch", "--quiet", "--import", gpg_keyring], env={"GNUPGHOME": gnupghome})
        config = ["gpg.ssh.allowedSignersFile=%s" % (allowed_signers or "/dev/null")]
        session("verify-commit", sha, config=config, env={"GNUPGHOME": gnupghome},
                what="signature verification of commit %s" % sha)
    finally:
        shutil.rmtree(gnupghome, ignore_errors=True)


def fetch(repo, version=None, dest=None, depth=None, sparse_paths=None, submodules=False, key_file=None,
          known_hosts=None, accept_hostkey=False, username=None, password=None, ca_file=None, verify_signature="none",
          allowed_signers=None, gpg_keyring=None, timeout=120, check_mode=False):
    """Bring ``dest`` to the commit ``version`` of ``repo``; return the git_fetch result dict.

    In check mode the checkout is not touched: the version is resolved against the remote and
    the result says whether the revision would move.
    """
    url, username, password = split_credentials(repo, username, password)
    if "://" not in url and not re.match(r"^[^/]+@[^/]+:", url):
        url = os.path.abspath(os.path.expanduser(url))  # a local path
    dest = os.path.abspath(os.path.expanduser(dest or default_dest(url)))
    session = GitSession(url, timeout=timeout, username=username, password=password, key_file=key_file,
                         known_hosts=known_hosts, accept_hostkey=accept_hostkey, ca_file=ca_file)
    with file_lock(lock_path(dest), timeout):
        cache.touch(dest)  # (a dest of the cache: kept by eviction; made by the fetch when new)
        cache.now_and_then(repositories_folder(), evict_repositories)
        return _fetch_locked(session, version, dest, depth, sparse_paths, submodules, verify_signature,
                             allowed_signers, gpg_keyring, check_mode)


def _fetch_locked(session, version, dest, depth, sparse_paths, submodules, verify_signature, allowed_signers,
                  gpg_keyring, check_mode):
    url = session.url
    repo = previous = None
    if not check_mode or os.path.isdir(os.path.join(dest, ".git")):
        repo = session.open(dest)
        previous = repo.head.commit.hexsha if repo.head.is_valid() else None
    refs, head_ref = parse_ls_remote(session("ls-remote", "--symref", url, what="listing the refs"))
    sha, ref = resolve(version, refs, head_ref)
    if not check_mode:
        _fetch_commit(session, repo, ref, sha, depth)
    if not ref:
        repo, sha = _commit_by_hash(session, repo, version, sha, check_mode)

    known = repo is not None and _has_commit(session, sha)
    if verify_signature == "head" and known:
        _verify_signature(session, sha, allowed_signers, gpg_keyring)
    result = {
        "repo": url, "ref": ref, "revision": sha, "previous_revision": previous, "changed": sha != previous,
        "path": dest, "commit": _commit_info(repo, sha) if known else None, "changed_paths": None,
    }
    if known and previous and _has_commit(session, previous):
        result["changed_paths"] = _changed_paths(session, previous, sha, sparse_paths)
    if not check_mode:
        _check_out(session, repo, sha, sparse_paths, submodules)
    return result


def _fetch_commit(session, repo, ref, sha, depth):
    """Fetch the resolved ``ref``; for a commit by hash, every branch and tag unless the commit is here."""
    if ref:
        # a forced refspec follows force-pushed branches
        local = ("refs/remotes/origin/" + ref[len("refs/heads/"):]) if ref.startswith("refs/heads/") else ref
        depth_args = ["--depth", str(depth)] if depth else []
        session("fetch", "--force", "--no-tags", "--quiet", *depth_args, session.url, "+%s:%s" % (ref, local))
        tidy(session)
    elif not (sha and _has_commit(session, sha)):
        # a commit by hash: fetch every branch and tag, with full history, then look for it
        unshallow = ["--unshallow"] if os.path.exists(os.path.join(repo.git_dir, "shallow")) else []
        session("fetch", "--force", "--quiet", *unshallow, session.url,
                "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
        tidy(session)


def _commit_by_hash(session, repo, version, sha, check_mode):
    """(repo, full sha) of a ``version`` no ref names; repo None in check mode when the commit is not fetched yet."""
    if repo is None or not _has_commit(session, sha or version):
        if check_mode and sha:
            return None, sha  # a full sha not fetched yet: it would change
        raise GitOpsError("commit %s not found in %s" % (version, session.url), repo=session.url, version=version)
    return repo, session("rev-parse", "--verify", "%s^{commit}" % (sha or version))


def _changed_paths(session, previous, sha, sparse_paths):
    """The files changed between the two commits, within ``sparse_paths`` when given."""
    paths = session("diff", "--name-only", "--no-renames", previous, sha).splitlines()
    prefixes = [p.strip("/") for p in sparse_paths or []]
    return [p for p in paths if not prefixes or any(p == d or p.startswith(d + "/") for d in prefixes)]


def _check_out(session, repo, sha, sparse_paths, submodules):
    """Detach the work tree at ``sha``, cleaned: nothing from an older revision (or anything else) survives."""
    if sparse_paths:
        session("sparse-checkout", "set", "--cone", "--", *sparse_paths)
    elif os.path.exists(os.path.join(repo.git_dir, "info", "sparse-checkout")):
        session("sparse-checkout", "disable")
    session("checkout", "--force", "--quiet", "--detach", sha)
    session("clean", "-ffdxq")
    if submodules:
        session("submodule", "update", "--init", "--recursive", "--force", "--checkout")
