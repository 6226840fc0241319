# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
