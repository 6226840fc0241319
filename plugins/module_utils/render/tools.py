# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Confining the external renderers (helm, kustomize / kubectl, sops): no network, no cluster, no user files."""

from __future__ import annotations

import os
import tempfile

# Rendering uses no network and no cluster: proxies that lead nowhere, no kubeconfig.
OFFLINE_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": "",
    "KUBECONFIG": os.devnull, "GIT_ALLOW_PROTOCOL": "file",
}


def private_home():
    """A throwaway HOME-like directory so tools read no user plugins, repositories or caches."""
    return tempfile.TemporaryDirectory(prefix="gitops-k8s-render-")
