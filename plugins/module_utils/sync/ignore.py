# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""``ignore_differences``: fields Git does not decide, as Argo CD's ``ignoreDifferences`` with
``RespectIgnoreDifferences=true``.

A rule matches objects by group, kind and optionally name and namespace, and names fields three
ways, each turned into concrete paths (lists of dict keys and list indexes) of one document:

- ``json_pointers``: RFC 6901 pointers (``/spec/replicas``);
- ``jq_path_expressions``: jq path expressions, the syntax Argo CD's ``jqPathExpressions`` take
  (``.spec.template.spec.initContainers[] | select(.name == "istio-init")``), evaluated by the
  ``jq`` library (libjq): jq can name the paths an expression selects (``path(...)``), which a
  query language such as JMESPath cannot, and an Argo CD rule works here unchanged;
- ``managed_fields_managers``: every field the named field managers own in the live object
  (``metadata.managedFields``), e.g. an operator or an HPA.

Matched fields are removed from both sides before comparing (``strip``), and on apply they are
not sent (``sendable``): a field we do not send and do not own stays with whoever set it. A field
our field manager still owns would be deleted by the server if we stopped sending it, so it is
sent with its live value instead (the value does not change, and whoever changes it next takes it).
"""

from __future__ import annotations

import copy
import json

from ..deps import import_library
from ..errors import GitOpsError
from ..refs import group_of, ref_of

# The ``ignore_differences`` option of the diff and apply modules (doc fragment ignore_differences).
IGNORE_ARGSPEC = {
    "ignore_differences": {"type": "list", "elements": "dict", "default": [], "options": {
        "group": {"type": "str", "default": ""},
        "kind": {"type": "str", "required": True},
        "name": {"type": "str"},
        "namespace": {"type": "str"},
        "json_pointers": {"type": "list", "elements": "str", "default": []},
        "jq_path_expressions": {"type": "list", "elements": "str", "default": []},
        "managed_fields_managers": {"type": "list", "elements": "str", "default": []},
    }},
}
SELECTORS = ("json_pointers", "jq_path_expressions", "managed_fields_managers")


# -- checking rules ----------------------------------------------------------------------------

def parse_pointer(pointer):
    """RFC 6901 JSON pointer -> list of reference tokens."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise GitOpsError("ignore_differences: %r is not a JSON pointer (it must start with '/')" % (pointer,),
                          json_pointer=pointer)
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _jq_program(expression):
    jq = import_library("jq", "jq", "ignore_differences with jq_path_expressions")
    try:
        return jq.compile("[path(%s)]" % expression)
    except ValueError as err:
        raise GitOpsError("ignore_differences: %r is not a jq path expression: %s" % (expression, err),
                          jq_path_expression=expression)


def check_ignore_rules(rules):
    """Validate ``ignore_differences`` early so a typo fails before any request; returns the rules
    with their jq programs compiled (key ``_jq``)."""
    checked = []
    for rule in rules or ():
        if not rule.get("kind"):
            raise GitOpsError("ignore_differences: every rule needs a kind (got %r)" % (rule,))
        if not any(rule.get(name) for name in SELECTORS):
            raise GitOpsError("ignore_differences: the rule for %s names no field: give json_pointers, "
                              "jq_path_expressions or managed_fields_managers" % rule["kind"])
        for pointer in rule.get("json_pointers") or ():
            parse_pointer(pointer)
        checked.append(dict(rule, _jq=[_jq_program(e) for e in rule.get("jq_path_expressions") or ()]))
    return checked


def matching(rules, ref):
    return [rule for rule in rules or () if
            rule.get("kind") == ref["kind"]
            and (rule.get("group") or "") == group_of(ref["apiVersion"])
            and rule.get("name") in (None, "", ref["name"])
            and rule.get("namespace") in (None, "", ref["namespace"])]


# -- managed fields (fieldsV1) -----------------------------------------------------------------

def _element(items, token):
    """Index of the list element a fieldsV1 ``k:``/``v:``/``i:`` token names, or None."""
    kind, _colon, text = token.partition(":")
    if not isinstance(items, list):
        return None
    if kind == "i":
        return int(text) if text.isdigit() and int(text) < len(items) else None
    value = json.loads(text)
    for index, item in enumerate(items):
        if kind == "v" and item == value:
            return index
        if kind == "k" and isinstance(item, dict) and all(item.get(k) == v for k, v in value.items()):
            return index
    return None


def field_paths(fields, doc, prefix=()):
    """The paths of ``doc`` a fieldsV1 set names (leaves, and elements owned as a whole ``.``)."""
    out = []
    for token, sub in (fields or {}).items():
        if token == ".":
            out.append(prefix)
            continue
        if token.startswith("f:"):
            key = token[2:]
            if not isinstance(doc, dict) or key not in doc:
                continue
        else:
            key = _element(doc, token)
            if key is None:
                continue
        child = doc[key]
        out += field_paths(sub, child, prefix + (key,)) if sub else [prefix + (key,)]
    return out


def manager_paths(live, managers, operation=None):
    """Paths of ``live`` that any of ``managers`` owns (only through ``operation`` when given)."""
    out = []
    for entry in (live or {}).get("metadata", {}).get("managedFields") or ():
        if entry.get("manager") in managers and operation in (None, entry.get("operation")) \
                and not entry.get("subresource"):
            out += field_paths(entry.get("fieldsV1"), live)
    return out


# -- paths of one document ---------------------------------------------------------------------

def _pointer_path(doc, tokens):
    path, node = [], doc
    for token in tokens:
        if isinstance(node, dict) and token in node:
            path.append(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            token = int(token)
            path.append(token)
        else:
            return None
        node = node[token]
    return tuple(path)


def rule_paths(rule, doc, live):
    """The paths of ``doc`` the rule ignores; ``live`` tells which fields its managers own."""
    paths = []
    for pointer in rule.get("json_pointers") or ():
        found = _pointer_path(doc, parse_pointer(pointer))
        if found:
            paths.append(found)
    for program in rule.get("_jq") or ():
        try:
            # jq gives the path of a field the object lacks too (path(.spec.paused)): nothing to ignore there
            paths += [tuple(p) for p in program.input_value(doc).first() if p and _value(doc, p)[0]]
        except ValueError:  # a runtime error (iterating a missing list...) selects nothing, as in Argo CD
            pass
    managers = rule.get("managed_fields_managers")
    if managers and live is not None:
        # what they own in the live object, located in ``doc`` by the same field set
        for entry in live.get("metadata", {}).get("managedFields") or ():
            if entry.get("manager") in managers:
                paths += field_paths(entry.get("fieldsV1"), doc)
    return paths


def _sort_token(token):
    return (0, token, "") if isinstance(token, int) else (1, 0, token)


def delete_paths(doc, paths):
    """Remove ``paths`` from ``doc`` in place (deepest and highest list index first)."""
    unique = set(paths)
    kept = [p for p in unique if not any(p[:n] in unique for n in range(1, len(p)))]
    for path in sorted(kept, key=lambda p: [_sort_token(t) for t in p], reverse=True):
        parent = doc
        for token in path[:-1]:
            parent = parent[token]
        del parent[path[-1]]


def strip(obj, rules, live=None):
    """A copy of ``obj`` without the fields the matching rules ignore (for comparing)."""
    out = copy.deepcopy(obj)
    for rule in matching(rules, ref_of(obj)):
        delete_paths(out, rule_paths(rule, out, live if live is not None else obj))
    return out


def _value(doc, path):
    for token in path:
        try:
            doc = doc[token]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, doc


def sendable(obj, rules, live, field_manager):
    """What apply sends for ``obj``: ignored fields left out, or at their live value while our
    field manager owns them (dropping them would make the server delete them)."""
    rules = matching(rules, ref_of(obj))
    if not rules or live is None:
        return obj
    ours = set(manager_paths(live, (field_manager,), "Apply"))
    out = copy.deepcopy(obj)
    dropped = []
    for rule in rules:
        for path in rule_paths(rule, out, live):
            owned = any(p[:len(path)] == path or path[:len(p)] == p for p in ours)
            present, value = _value(live, path)
            if owned and present:
                parent = out
                for token in path[:-1]:
                    parent = parent[token]
                parent[path[-1]] = copy.deepcopy(value)
            else:
                dropped.append(path)
    delete_paths(out, dropped)
    return out
