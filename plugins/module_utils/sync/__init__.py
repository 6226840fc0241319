# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Delivering an application's bundle to its cluster: the pieces of the sync engine."""
