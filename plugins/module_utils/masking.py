# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Secret masking: show that a Secret value changed without ever showing the value.

Used for every diff, result and error message the engine returns; ``show_secrets`` is the only
way around it. The public helpers:

  is_secret(obj)              True for core/v1 Secrets
  mask_secret(obj)            a copy with every data/stringData value replaced by MASK
  mask_pair(before, after)    copies of two versions of one object where each value reads
                              UNCHANGED on both sides when equal, OLD / NEW when it differs
                              (or exists on one side only), so a diff shows *which* keys changed
  redact(text, objects)       ``text`` with every Secret value of ``objects`` (plain and base64)
                              replaced by MASK, for server messages that may echo a value

Non-Secret objects pass through untouched (same object, not a copy). The
``kubectl.kubernetes.io/last-applied-configuration`` annotation of a Secret holds its values in
clear, so it is masked too.
"""

from __future__ import annotations

import base64
import binascii
import copy

MASK = "***"
UNCHANGED = "*** (unchanged)"
OLD = "*** (old value)"
NEW = "*** (new value)"
VALUE_FIELDS = ("data", "stringData")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Values shorter than this are not searched for in free text: masking every "1" or "ok" in an
# error message would hide the message itself and such values protect nothing.
MIN_REDACT_LENGTH = 3


def is_secret(obj):
    return bool(obj) and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def _mask_annotation(obj):
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if LAST_APPLIED in annotations:
        annotations[LAST_APPLIED] = MASK


def mask_secret(obj):
    if not is_secret(obj):
        return obj
    masked = copy.deepcopy(obj)
    for field in VALUE_FIELDS:
        if isinstance(masked.get(field), dict):
            masked[field] = {key: MASK for key in masked[field]}
    _mask_annotation(masked)
    return masked


def mask_pair(before, after):
    """Mask two versions of one object (either may be None, e.g. for a create or a delete)."""
    if not (is_secret(before) or is_secret(after)):
        return before, after
    before, after = copy.deepcopy(before), copy.deepcopy(after)
    for field in VALUE_FIELDS:
        old = (before or {}).get(field)
        new = (after or {}).get(field)
        old = old if isinstance(old, dict) else {}
        new = new if isinstance(new, dict) else {}
        if before is not None and field in before:
            before[field] = {k: UNCHANGED if k in new and new[k] == v else OLD for k, v in old.items()}
        if after is not None and field in after:
            after[field] = {k: UNCHANGED if k in old and old[k] == v else NEW for k, v in new.items()}
    for obj in (before, after):
        if obj is not None:
            _mask_annotation(obj)
    return before, after


def secret_values(obj):
    """Every value of a Secret as it may appear in text: raw, base64-decoded and base64-encoded."""
    if not is_secret(obj):
        return set()
    values = set()
    for field in VALUE_FIELDS:
        for value in (obj.get(field) or {}).values():
            if not isinstance(value, str):
                continue
            values.add(value)
            if field == "data":
                try:
                    values.add(base64.b64decode(value, validate=True).decode("utf-8"))
                except (binascii.Error, UnicodeDecodeError):
                    pass  # binary or not base64: the raw form is all a message could contain
            else:
                values.add(base64.b64encode(value.encode("utf-8")).decode("ascii"))
    return {v for v in values if len(v) >= MIN_REDACT_LENGTH}


def redact(text, objects):
    """Remove every Secret value of ``objects`` from ``text`` (longest first, so no fragment survives)."""
    values = set()
    for obj in objects:
        values |= secret_values(obj)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
