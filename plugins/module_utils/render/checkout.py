# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The checkout as untrusted input: every path a renderer touches must stay inside it."""

from __future__ import annotations

import fnmatch
import os

from ..errors import GitOpsError


class Checkout:
    """A checkout rooted at ``root`` (its real path); resolves and lists files without escaping it."""

    def __init__(self, root):
        if not os.path.isdir(root):
            raise GitOpsError("source %s is not a directory (run gitops.k8s.git_fetch first?)" % root, source=root)
        self.root = os.path.realpath(root)

    def contains(self, path):
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root + os.sep)

    def resolve(self, rel, what="path", base=None):
        """``rel`` (relative to ``base``, a directory of the checkout; default its root) as an absolute real path;
        anything outside the checkout is refused."""
        base = base or self.root
        # errors say where a relative path starts when that is not the root
        start = "the checkout %s" % self.root
        if base != self.root:
            start = "%s in %s" % (self.relpath(base), start)
        if os.path.isabs(rel):
            raise GitOpsError("%s %r is absolute; it must be relative to %s" % (what, rel, start), path=rel)
        full = os.path.join(base, rel)
        if not self.contains(full):
            raise GitOpsError("%s %r resolves outside the checkout %s (through '..' or a symlink); refused"
                              % (what, rel, self.root), path=rel)
        if not os.path.exists(full):
            raise GitOpsError("%s %r does not exist (relative to %s)" % (what, rel, start), path=rel)
        return os.path.realpath(full)

    def relpath(self, path):
        return os.path.relpath(path, self.root)

    def refuse_escaping_symlinks(self, top):
        """Before an external tool reads ``top``: no symlink under it may point outside the checkout."""
        for folder, dirs, files in os.walk(top):
            for name in dirs + files:
                path = os.path.join(folder, name)
                if os.path.islink(path) and not self.contains(path):
                    raise GitOpsError("%s is a symlink to %s, outside the checkout; refused"
                                      % (self.relpath(path), os.readlink(path)), file=self.relpath(path))

    def files(self, top, extensions, recurse=False, include=None, exclude=None):
        """Files under ``top`` ending with ``extensions``, sorted; globs match the path relative to ``top``."""
        found = []
        for folder, dirs, names in os.walk(top):
            # hidden folders (.git) never hold manifests; an excluded folder is not entered
            dirs[:] = [] if not recurse else sorted(
                d for d in dirs if not d.startswith(".")
                and not any(_glob(os.path.relpath(os.path.join(folder, d), top), p) for p in exclude or ()))
            for name in sorted(names):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, top)
                if not name.endswith(tuple(extensions)) or name.startswith("."):
                    continue
                if include and not any(_glob(rel, pattern) for pattern in include):
                    continue
                if exclude and any(_glob(rel, pattern) for pattern in exclude):
                    continue
                if not self.contains(path):
                    raise GitOpsError("%s is a symlink to %s, outside the checkout; refused"
                                      % (self.relpath(path), os.readlink(path)), file=self.relpath(path))
                found.append(path)
        return found

    def read(self, path):
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError) as err:
            raise GitOpsError("cannot read %s: %s" % (self.relpath(path), err), file=self.relpath(path))


def _glob(rel, pattern):
    """A pattern with a slash matches the relative path, one without matches the file name too."""
    return fnmatch.fnmatch(rel, pattern) or ("/" not in pattern and fnmatch.fnmatch(os.path.basename(rel), pattern))
