# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # How every cluster-facing module reaches the API server (see module_utils/cluster/client.py).
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file.
      - When neither O(kubeconfig) nor O(host) is set, the E(K8S_AUTH_KUBECONFIG) environment variable is used,
        then E(KUBECONFIG), then C(~/.kube/config).
    type: path
  context:
    description:
      - The kubeconfig context to use. Defaults to E(K8S_AUTH_CONTEXT), then the kubeconfig's current context.
    type: str
  host:
    description:
      - URL of the API server, for example C(https://10.0.0.1:6443). Defaults to E(K8S_AUTH_HOST).
      - When set, the kubeconfig is not read; authenticate with O(api_key) or O(client_cert) and O(client_key).
    type: str
  api_key:
    description:
      - Bearer token used with O(host). Defaults to E(K8S_AUTH_API_KEY). Never printed.
    type: str
  ca_cert:
    description:
      - CA certificate bundle that signed the API server's certificate. Defaults to E(K8S_AUTH_SSL_CA_CERT).
    type: path
  client_cert:
    description:
      - Client certificate used with O(host). Defaults to E(K8S_AUTH_CERT_FILE).
    type: path
  client_key:
    description:
      - Key of O(client_cert). Defaults to E(K8S_AUTH_KEY_FILE).
    type: path
  validate_certs:
    description:
      - Whether to verify the API server's certificate. Defaults to E(K8S_AUTH_VERIFY_SSL), then the kubeconfig's
        setting (verification on).
    type: bool
  request_timeout:
    description:
      - Seconds to wait for one API request (watches use their own timeout).
    type: float
    default: 60
notes:
  - The environment variables are those the Kubernetes credential type of AWX / Automation Controller injects,
    so a job template with that credential needs no cluster options.
"""
