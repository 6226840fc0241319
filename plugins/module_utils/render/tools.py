# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Finding and confining the external renderers (helm, kustomize / kubectl)."""

from __future__ import annotations

import os
import shutil
import tempfile

from ..errors import GitOpsError

# Rendering uses no network and no cluster: proxies that lead nowhere, no kubeconfig.
OFFLINE_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": "",
    "KUBECONFIG": os.devnull, "GIT_ALLOW_PROTOCOL": "file",
}


def find(names, explicit, option):
    """``explicit`` or the first of ``names`` on PATH; a clear error when none is installed."""
    candidates = [explicit] if explicit else names
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    raise GitOpsError("%s not found: install it or set the %s option" % (" or ".join(candidates), option))


def private_home():
    """A throwaway HOME-like directory so tools read no user plugins, repositories or caches."""
    return tempfile.TemporaryDirectory(prefix="gitops-k8s-render-")
