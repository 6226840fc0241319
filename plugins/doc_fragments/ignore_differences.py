# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # The ignore_differences option of diff and apply (module_utils/sync/ignore.py IGNORE_ARGSPEC).
    DOCUMENTATION = r"""
options:
  ignore_differences:
    description:
      - Fields Git does not decide, for objects matching C(group), C(kind) and optionally C(name) and C(namespace).
        They are removed from both the live and the desired object before comparing, so an object that differs only
        there is reported C(unchanged) and is not applied.
      - M(gitops.k8s.apply) does not send them either, so they stay with whoever owns them (an HPA's C(/spec/replicas),
        an injected sidecar) - Argo CD's C(RespectIgnoreDifferences=true). A field still owned by our field manager
        is sent with its live value instead, because leaving it out would make the server delete it.
      - The equivalent of Argo CD's C(ignoreDifferences) with C(jsonPointers), C(jqPathExpressions) and
        C(managedFieldsManagers). Every rule needs at least one of the three.
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
        default: []
      jq_path_expressions:
        description:
          - jq path expressions of the fields to ignore, as Argo CD's C(jqPathExpressions) take them, for example
            C(.spec.template.spec.initContainers[] | select(.name == "istio-init")).
          - Evaluated by the C(jq) Python library (libjq). An expression that fails on an object (iterating a missing
            list) selects nothing there.
        type: list
        elements: str
        default: []
      managed_fields_managers:
        description:
          - Field managers (C(metadata.managedFields[].manager)) whose fields are ignored, for example
            C(kube-controller-manager) for what an HPA sets or an operator's name.
        type: list
        elements: str
        default: []
"""
