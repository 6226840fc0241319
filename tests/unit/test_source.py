"""Pure logic of git_fetch: credentials out of URLs, ls-remote parsing, version resolution."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sources.git import (
    default_dest, newest_matching_tag, parse_ls_remote, resolve, split_credentials,
)

A, B, C, D = ("a" * 40), ("b" * 40), ("c" * 40), ("d" * 40)
LS_REMOTE = "\n".join([
    "ref: refs/heads/main\tHEAD",
    "%s\tHEAD" % A,
    "%s\trefs/heads/main" % A,
    "%s\trefs/heads/release" % B,
    "%s\trefs/tags/v1.2.0" % C,          # annotated: the peeled line below is the commit
    "%s\trefs/tags/v1.2.0^{}" % B,
    "%s\trefs/tags/v1.10.1" % D,
    "%s\trefs/tags/v2.0.0" % A,
    "%s\trefs/tags/v2.1.0-rc.1" % C,
    "%s\trefs/tags/not-a-version" % C,
])


def test_credentials_are_taken_out_of_https_urls():
    assert split_credentials("https://bob:s3cret@git.example.com/org/repo.git") == \
        ("https://git.example.com/org/repo.git", "bob", "s3cret")
    assert split_credentials("https://tok@host/r.git") == ("https://host/r.git", "tok", None)
    # explicit options win; ssh users are not credentials
    assert split_credentials("https://bob:x@host/r.git", "ann", "y") == ("https://host/r.git", "ann", "y")
    assert split_credentials("git@host:org/r.git") == ("git@host:org/r.git", None, None)
    assert split_credentials("ssh://git@host/org/r.git") == ("ssh://git@host/org/r.git", None, None)


def test_default_dest_is_keyed_by_url_without_credentials():
    clean = default_dest(split_credentials("https://bob:s3cret@git.example.com/org/deploy.git")[0])
    assert clean == default_dest("https://git.example.com/org/deploy.git")
    assert "s3cret" not in clean and "/gitops-k8s/git/deploy-" in clean
    assert default_dest("https://git.example.com/org/other.git") != clean


def test_ls_remote_parsing_peels_annotated_tags():
    refs, head = parse_ls_remote(LS_REMOTE)
    assert head == "refs/heads/main"
    assert refs["refs/tags/v1.2.0"] == B
    assert refs["refs/heads/release"] == B


@pytest.mark.parametrize("version, expected", [
    (None, (A, "refs/heads/main")),
    ("HEAD", (A, "refs/heads/main")),
    ("release", (B, "refs/heads/release")),
    ("v1.2.0", (B, "refs/tags/v1.2.0")),
    ("refs/tags/v1.10.1", (D, "refs/tags/v1.10.1")),
    (">=1.2.0 <2.0.0", (D, "refs/tags/v1.10.1")),      # numeric, not lexical: 1.10 > 1.2
    ("^1.2", (D, "refs/tags/v1.10.1")),
    ("~1.2.0", (B, "refs/tags/v1.2.0")),
    ("1.x", (D, "refs/tags/v1.10.1")),
    (">=1.0.0", (A, "refs/tags/v2.0.0")),              # prereleases only when asked for
    ("<1.0.0 || >=2.0.0", (A, "refs/tags/v2.0.0")),
    (B.upper(), (B, None)),
    ("abc1234", (None, None)),                           # abbreviated: found after fetching
])
def test_resolve(version, expected):
    refs, head = parse_ls_remote(LS_REMOTE)
    assert resolve(version, refs, head) == expected


def test_unmatched_range_and_unknown_names_fail_clearly():
    refs, head = parse_ls_remote(LS_REMOTE)
    with pytest.raises(GitOpsError, match="no tag matches the range '>=3.0.0'.*v1.10.1"):
        resolve(">=3.0.0", refs, head)
    with pytest.raises(GitOpsError, match="neither a branch, a tag"):
        resolve("feature/x", refs, head)
    with pytest.raises(GitOpsError, match="no HEAD branch"):
        resolve(None, {}, None)


def test_newest_matching_tag_ignores_non_versions():
    assert newest_matching_tag(">=0.1", ["latest", "v0.2.0", "0.3.0", "stable"]) == "0.3.0"
    assert newest_matching_tag("^0.2.0", ["v0.2.0", "v0.2.9", "v0.3.0"]) == "v0.2.9"
