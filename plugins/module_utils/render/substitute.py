# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Post-render variable substitution, like Flux's post-build substitution.

``${VAR}`` and ``${VAR:=default}`` (or ``:-``) are replaced in each object's YAML, then the
object is parsed again, so ``replicas: ${REPLICAS}`` becomes a number; ``$${VAR}`` is a literal
``${VAR}``. Objects annotated ``kustomize.toolkit.fluxcd.io/substitute: disabled`` are left alone.
"""

from __future__ import annotations

import re

from ..deps import require_yaml
from ..errors import GitOpsError
from ..refs import describe, ref_of
from .documents import dump, loader

VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::[=-]([^}]*))?\}")
DISABLED = "kustomize.toolkit.fluxcd.io/substitute"


def substitute(source, obj, variables, strict=True):
    """Return ``obj`` with its variables replaced; an undefined one is an error when ``strict``."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if annotations.get(DISABLED) == "disabled":
        return obj
    text = dump(obj)
    if "${" not in text:
        return obj
    unresolved = []

    def replace(match):
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in variables:
            return str(variables[name])
        if default is not None:
            return default
        unresolved.append(name)
        return ""

    text = VARIABLE.sub(replace, text)
    if unresolved and strict:
        raise GitOpsError("%s: %s uses undefined variable(s) %s (set them in substitute, give a default with "
                          "${VAR:=default}, or set substitute_strict: false)"
                          % (source, describe(ref_of(obj)), ", ".join("${%s}" % n for n in sorted(set(unresolved)))),
                          file=source, object=ref_of(obj), variables=sorted(set(unresolved)))
    yaml, yaml_loader = require_yaml("substitute"), loader()
    try:
        return yaml.load(text, Loader=yaml_loader)
    except yaml.YAMLError as err:
        raise GitOpsError("%s: %s is not valid YAML after substitution: %s" % (source, describe(ref_of(obj)), err),
                          file=source, object=ref_of(obj))
