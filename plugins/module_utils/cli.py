"""One declared way to find and run an external CLI (git, kubectl, kustomize, helm, sops, gpg).

Every call has a timeout, never goes through a shell, and a failure raises GitOpsError
carrying the command's stderr.
"""

import os
import shutil
import subprocess

from .errors import GitOpsError

DEFAULT_TIMEOUT = 120


def find_tool(names, explicit, option):
    """``explicit`` or the first of ``names`` on PATH; a clear error when none is installed."""
    candidates = [explicit] if explicit else names
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    raise GitOpsError("%s not found: install it or set the %s option" % (" or ".join(candidates), option))


def run_command(argv, cwd=None, env=None, timeout=DEFAULT_TIMEOUT, stdin=None, redact=(), binary=False):
    """Run ``argv`` and return its stdout as text (as bytes with ``binary``, and ``stdin`` is bytes then).

    ``env`` entries are added to (not replacing) the current environment; an entry set to None
    removes that variable. Strings in ``redact`` (tokens, passwords) are removed from any error text.
    """
    full_env = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value

    def scrub(text):
        for secret in redact:
            if secret:
                text = text.replace(secret, "********")
        return text

    shown = scrub(" ".join(argv))
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=full_env, input=stdin, capture_output=True, text=not binary, timeout=timeout, check=False,
        )
    except FileNotFoundError:
        raise GitOpsError("%s: command not found (is it installed and on PATH?)" % argv[0], command=shown)
    except subprocess.TimeoutExpired:
        raise GitOpsError("%s: timed out after %ss" % (shown, timeout), command=shown)
    if proc.returncode != 0:
        stderr = scrub((proc.stderr.decode("utf-8", "replace") if binary else proc.stderr).strip())
        raise GitOpsError("%s failed (exit %d): %s" % (shown, proc.returncode, stderr), command=shown, stderr=stderr, rc=proc.returncode)
    return proc.stdout
