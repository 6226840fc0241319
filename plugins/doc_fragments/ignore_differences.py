# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # The ignore_differences option of diff and apply (module_utils/diff.py IGNORE_ARGSPEC).
    DOCUMENTATION = r"""
options:
  ignore_differences:
    description:
      - Paths never considered different, for objects matching C(group), C(kind) and optionally C(name) and
        C(namespace). They are removed from both the live and the desired object before comparing, so an object that
        differs only there is reported C(unchanged) and is not applied.
      - The equivalent of Argo CD's C(ignoreDifferences) with C(jsonPointers).
    type: list
    elements: dict
    default: []
    suboptions:
      group:
        description: API group of the objects (empty for the core group).
        type: str
        default: ""
      kind:
        description: Kind of the objects.
        type: str
        required: true
      name:
        description: Only the object with this name.
        type: str
      namespace:
        description: Only objects in this namespace.
        type: str
      json_pointers:
        description:
          - RFC 6901 JSON pointers of the fields to ignore, for example C(/spec/replicas) or
            C(/metadata/annotations/example.com~1build).
        type: list
        elements: str
        required: true
"""
