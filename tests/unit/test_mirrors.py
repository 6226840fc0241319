"""Mirrors and credentials by URL prefix (gitops_mirrors, gitops_credentials): which server an
application's sources come from, and what it is given."""

import pytest

from ansible_collections.gitops.k8s.plugins.module_utils.errors import GitOpsError
from ansible_collections.gitops.k8s.plugins.module_utils.sources.mirrors import (check_credentials, check_mirrors, mirrored,
                                                                                 sourced_app)

MIRRORS = [{"prefix": "https://github.com/", "replace": "https://git.internal/github/"},
           {"prefix": "https://github.com/acme/", "replace": "https://git.internal/acme/"},
           {"prefix": "https://charts.example.com", "replace": "https://nexus.internal/charts"}]
CREDENTIALS = [{"url": "https://github.com/", "username": "gh", "password": "github-token"},
               {"url": "https://git.internal/", "username": "mirror", "password": "mirror-token"},
               {"url": "https://nexus.internal/", "username": "nexus", "password": "nexus-token", "ca_file": "/ca.pem"}]


def test_the_longest_prefix_wins_and_other_urls_are_left_alone():
    assert mirrored("https://github.com/acme/shop.git", MIRRORS) == "https://git.internal/acme/shop.git"
    assert mirrored("https://github.com/other/lib.git", MIRRORS) == "https://git.internal/github/other/lib.git"
    assert mirrored("https://gitlab.com/x.git", MIRRORS) == "https://gitlab.com/x.git"
    assert mirrored("https://github.com/x.git", []) == "https://github.com/x.git"


def test_repo_and_helm_repo_are_rewritten_and_get_the_credentials_of_the_mirror():
    app = {"name": "shop", "repo": "https://github.com/acme/shop.git",
           "helm": {"repo": "https://charts.example.com/stable", "chart": "shop"}}
    result, moved = sourced_app(app, MIRRORS, CREDENTIALS)
    assert result["repo"] == "https://git.internal/acme/shop.git"
    assert result["credentials"] == {"username": "mirror", "password": "mirror-token"}
    assert result["helm"] == {"repo": "https://nexus.internal/charts/stable", "chart": "shop", "username": "nexus",
                              "password": "nexus-token", "ca_file": "/ca.pem"}
    assert moved == {"repo": {"from": "https://github.com/acme/shop.git", "to": "https://git.internal/acme/shop.git"},
                     "helm.repo": {"from": "https://charts.example.com/stable",
                                   "to": "https://nexus.internal/charts/stable"}}
    assert app["repo"] == "https://github.com/acme/shop.git", "the caller's application is not modified"


def test_an_application_s_own_credentials_are_kept_and_no_mirror_means_no_rewrite():
    own = {"username": "me", "password": "mine"}
    result, moved = sourced_app({"name": "a", "repo": "https://github.com/x/a.git", "credentials": own}, [],
                                CREDENTIALS)
    assert result["repo"] == "https://github.com/x/a.git" and result["credentials"] == own and moved == {}
    result, _moved = sourced_app({"name": "b", "repo": "https://github.com/x/b.git"}, [], CREDENTIALS)
    assert result["credentials"] == {"username": "gh", "password": "github-token"}


def test_invalid_mirrors_and_credentials_are_refused_naming_the_entry():
    assert check_mirrors(None, "mirrors") == [] and check_mirrors(MIRRORS, "mirrors") == MIRRORS
    with pytest.raises(GitOpsError, match=r"gitops_mirrors\[0\] must be a mapping with prefix and replace"):
        check_mirrors([{"prefix": "https://x/"}], "gitops_mirrors")
    with pytest.raises(GitOpsError, match=r"credentials\[1\]: unknown key token"):
        check_credentials([{"url": "https://y/"}, {"url": "https://x/", "token": "t"}], "credentials")
    with pytest.raises(GitOpsError, match=r"credentials\[0\] must be a mapping with a url"):
        check_credentials([{"username": "u"}], "credentials")
