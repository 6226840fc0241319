# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Scope and apply order of kinds."""

from __future__ import annotations

from ..refs import group_of

# Built-in cluster-scoped kinds by API group; CRDs in the bundle add theirs.
CLUSTER_SCOPED = {
    "": {"Namespace", "Node", "PersistentVolume", "ComponentStatus"},
    "rbac.authorization.k8s.io": {"ClusterRole", "ClusterRoleBinding"},
    "apiextensions.k8s.io": {"CustomResourceDefinition"},
    "apiregistration.k8s.io": {"APIService"},
    "admissionregistration.k8s.io": {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
                                     "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                                     "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"},
    "storage.k8s.io": {"StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "VolumeAttributesClass"},
    "scheduling.k8s.io": {"PriorityClass"},
    "node.k8s.io": {"RuntimeClass"},
    "networking.k8s.io": {"IngressClass", "IPAddress", "ServiceCIDR"},
    "certificates.k8s.io": {"CertificateSigningRequest", "ClusterTrustBundle"},
    "flowcontrol.apiserver.k8s.io": {"FlowSchema", "PriorityLevelConfiguration"},
    "policy": {"PodSecurityPolicy"},
    "resource.k8s.io": {"DeviceClass", "ResourceSlice"},
    "storagemigration.k8s.io": {"StorageVersionMigration"},
}

# Namespaces and CRDs first, then Argo CD's (Helm's) install order; unknown kinds come last.
KIND_ORDER = [
    "Namespace", "CustomResourceDefinition", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "DaemonSet",
    "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job",
    "CronJob", "IngressClass", "Ingress", "APIService",
]
KIND_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}


def cluster_scoped_kinds(objects):
    """(group, kind) pairs without a namespace: the built-in ones plus Cluster-scoped CRDs among ``objects``."""
    scoped = {(group, kind) for group, kinds in CLUSTER_SCOPED.items() for kind in kinds}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition" and group_of(obj.get("apiVersion", "")) == "apiextensions.k8s.io":
            spec = obj.get("spec") or {}
            if spec.get("scope") == "Cluster":
                scoped.add((spec.get("group", ""), (spec.get("names") or {}).get("kind", "")))
    return scoped


def sort_key(entry):
    """(wave, kind rank, kind, group, namespace, name): stable, and the same on every run."""
    kind = entry["kind"]
    return (entry["wave"], KIND_RANK.get(kind, len(KIND_ORDER)), kind, group_of(entry["apiVersion"]),
            entry["namespace"], entry["name"])
