# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # Where the in-cluster inventory of the applications lives (module_utils/tasks/option_specs.py INVENTORY_ARGSPEC).
    DOCUMENTATION = r"""
options:
  inventory_namespace:
    description:
      - Namespace holding the inventory records of the applications (and, for M(gitops.k8s.apply), their leases).
      - M(gitops.k8s.apply) creates it when absent.
    type: str
    default: gitops-system
  inventory_kind:
    description:
      - Kind of object holding an application's record, C(gitops-app-<app>) in O(inventory_namespace).
      - Use C(Secret) where ConfigMaps of that namespace are readable by too many people.
    type: str
    choices: [ConfigMap, Secret]
    default: ConfigMap
"""
