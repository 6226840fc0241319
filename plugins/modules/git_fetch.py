#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: git_fetch
short_description: Fetch one commit of a Git repository into a local cache, safely
version_added: 0.1.0
description:
  - Resolves O(version) (a branch, a tag, a commit or a semver range over the tags) against the remote, fetches that
    commit into a cache directory and checks it out detached and clean - files of older revisions never survive.
  - The repository is untrusted input - Git hooks never run (C(core.hooksPath=/dev/null) on every git call), no
    C(ext::) transport, submodules only when asked. Git runs without the global and system git config (no
    C(credential.helper), C(url.*.insteadOf) or other setting of the controller's user applies).
  - Credentials are never written into the URL stored on disk, into errors or into results; HTTPS passwords reach git
    through the environment of the one command that needs them, and only for the host (and port) of O(repo) - a
    submodule or a redirect on another host gets none.
  - Two runs on the same cache wait for each other (a file lock next to O(dest)); a force-pushed branch is followed;
    when the remote is unreachable the task fails naming the repository and the cache stays as it was.
  - Uses GitPython (C(pip install GitPython)) and the C(git) command.
author:
  - gitops.k8s developers (@gitops-k8s)
attributes:
  check_mode:
    support: full
    description: Resolves the version against the remote (C(git ls-remote)) and reports what would change; the checkout is not touched.
  diff_mode:
    support: full
    description: Shows the revision before and after.
options:
  repo:
    description:
      - The repository - an https or ssh URL (C(https://host/org/repo.git), C(git@host:org/repo.git)), a local path or
        a C(file://) URL.
      - A C(user:password@) part of an https URL is taken out of the URL and used like O(username) and O(password).
    type: str
    required: true
  version:
    description:
      - What to check out - a branch, a tag, a full or abbreviated commit sha, or a semver range matched against the
        tags (C(>=1.2.0 <2.0.0), C(^1.2), C(~1.4.0), C(1.x), alternatives with C(||)); the newest matching tag wins.
      - Default is the remote's HEAD branch.
    type: str
  dest:
    description:
      - The checkout directory. Default is a directory under C(~/.cache/gitops-k8s/git/) keyed by the URL (without
        credentials), so every play that fetches the same repository shares one cache. Repositories of that cache
        unused for 30 days, or beyond the 256 most recently used, are removed (never while a run holds one).
      - An existing directory that is not a git checkout is never overwritten.
    type: path
  depth:
    description:
      - Fetch only this many commits of a branch or tag (shallow). Commits given by sha are fetched with full history.
    type: int
  sparse_paths:
    description:
      - Check out only these directories (cone-mode sparse checkout); files at the top of the repository are always
        there. C(changed_paths) is restricted to them.
    type: list
    elements: str
  submodules:
    description:
      - Also check out the submodules (recursively). Off by default - a submodule is code from another repository.
    type: bool
    default: false
  key_file:
    description:
      - Private key for SSH URLs.
    type: path
  known_hosts:
    description:
      - Known-hosts file for SSH URLs. Default is the user's C(~/.ssh/known_hosts).
    type: path
  accept_hostkey:
    description:
      - Accept (and remember) the host key of an SSH server seen for the first time. Default is strict host key checking.
    type: bool
    default: false
  username:
    description:
      - User name for HTTPS authentication (with O(password)). Default C(git) when only a password or token is given.
    type: str
  password:
    description:
      - Password or access token for HTTPS authentication. Never written to disk, never shown.
      - Given to the host of O(repo) only.
    type: str
  ca_file:
    description:
      - CA certificates (PEM) to trust for an HTTPS O(repo), for a server with a private CA. Default is the system's
        trust store (or E(GIT_SSL_CAINFO)).
    type: path
  verify_signature:
    description:
      - C(head) refuses a commit that has no valid signature from O(allowed_signers) or O(gpg_keyring); the checkout
        is then left as it was.
    type: str
    choices: [none, head]
    default: none
  allowed_signers:
    description:
      - The SSH allowed signers file (C(gpg.ssh.allowedSignersFile) format) for SSH-signed commits.
    type: path
  gpg_keyring:
    description:
      - A file of trusted GPG public keys (armored or binary) for GPG-signed commits; imported into a throwaway keyring.
    type: path
  timeout:
    description:
      - Seconds allowed for each git command, and for waiting on the cache lock.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: Fetch the head of main
  gitops.k8s.git_fetch:
    repo: https://git.example.com/team/deploy.git
    version: main
  register: fetched

- name: Newest 1.x release, shallow, over SSH with a deploy key
  gitops.k8s.git_fetch:
    repo: git@git.example.com:team/deploy.git
    version: ">=1.0.0 <2.0.0"
    depth: 1
    key_file: ~/.ssh/deploy_key
    known_hosts: /etc/gitops/known_hosts

- name: Exactly the commit CI built, signed by a release key
  gitops.k8s.git_fetch:
    repo: https://git.example.com/team/deploy.git
    version: "{{ gitops_revision }}"
    username: ci
    password: "{{ vault_git_token }}"
    verify_signature: head
    allowed_signers: /etc/gitops/allowed_signers

- name: Render what was fetched
  gitops.k8s.render:
    source: "{{ fetched.path }}"
    path: apps/guestbook
"""

RETURN = r"""
repo:
  description: The repository URL, without credentials.
  returned: always
  type: str
ref:
  description: The ref O(version) resolved to (C(refs/heads/main), C(refs/tags/v1.4.0)); null for a commit given by sha.
  returned: always
  type: str
  sample: refs/tags/v1.4.0
revision:
  description: The commit checked out (or that would be, in check mode), 40 hex digits.
  returned: always
  type: str
  sample: 9fceb02d0ae598e95dc970b74767f19372d61af8
previous_revision:
  description: The commit the cache had before this run; null on the first fetch.
  returned: always
  type: str
changed:
  description: Whether the revision moved.
  returned: always
  type: bool
path:
  description: The checkout directory (O(dest) or the cache directory).
  returned: always
  type: str
commit:
  description:
    - The checked-out commit - C(author) and C(committer) (C(Name <email>)), C(date) (ISO 8601), C(message) and
      C(signed) (whether it carries a signature).
    - Null in check mode when the commit has not been fetched yet.
  returned: always
  type: dict
  sample: {"author": "Ann <ann@example.com>", "committer": "Ann <ann@example.com>", "date": "2025-01-31T10:00:00+01:00",
           "message": "guestbook: 3 replicas", "signed": true}
changed_paths:
  description: Files that differ between RV(previous_revision) and RV(revision); null on the first fetch.
  returned: always
  type: list
  elements: str
  sample: ["apps/guestbook/values.yaml"]
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.sources.git import fetch, split_credentials

ARGSPEC = {
    "repo": {"type": "str", "required": True},
    "version": {"type": "str"},
    "dest": {"type": "path"},
    "depth": {"type": "int"},
    "sparse_paths": {"type": "list", "elements": "str"},
    "submodules": {"type": "bool", "default": False},
    "key_file": {"type": "path"},
    "known_hosts": {"type": "path"},
    "accept_hostkey": {"type": "bool", "default": False},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "ca_file": {"type": "path"},
    "verify_signature": {"type": "str", "choices": ["none", "head"], "default": "none"},
    "allowed_signers": {"type": "path"},
    "gpg_keyring": {"type": "path"},
    "timeout": {"type": "int", "default": 120},
}


def engine(call):
    # a password inside the repo URL is masked in everything Ansible returns or logs, like no_log ones
    call.hide(split_credentials(call.params["repo"])[2])
    result = fetch(check_mode=call.check_mode, **call.params)
    result["ansible_diff"] = {"before": "revision: %s\n" % result["previous_revision"],
                              "after": "revision: %s\n" % result["revision"]}
    return result


def main():
    run_module(ARGSPEC, engine)


if __name__ == "__main__":
    main()
