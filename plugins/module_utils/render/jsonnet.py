# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""``*.jsonnet`` files evaluated with the jsonnet Python binding; imports stay inside the checkout.

``ext_vars`` and ``tla`` values that are strings are passed as strings, anything else as code
(its JSON), as Argo CD's ``code: true`` does.
"""

from __future__ import annotations

import json
import os

from ..deps import import_library
from ..errors import GitOpsError


def _split(values):
    values = values or {}
    strings = {k: v for k, v in values.items() if isinstance(v, str)}
    codes = {k: json.dumps(v) for k, v in values.items() if not isinstance(v, str)}
    return strings, codes


def render(checkout, target, options):
    jsonnet = import_library("_jsonnet", "jsonnet", "rendering type=jsonnet")
    libs = [checkout.resolve(lib, "jsonnet library path") for lib in options.get("jsonnet_libs") or []]

    def import_callback(folder, rel):
        for base in [folder] + libs:
            path = os.path.join(base, rel)
            if os.path.isfile(path):
                if os.path.isabs(rel) or not checkout.contains(path):
                    raise RuntimeError("import %r resolves outside the checkout; refused" % rel)
                with open(path, "rb") as handle:
                    return os.path.realpath(path), handle.read()
        raise RuntimeError("import %r not found (searched %s and the jsonnet_libs)" % (rel, checkout.relpath(folder)))

    ext_vars, ext_codes = _split(options.get("ext_vars"))
    tla_vars, tla_codes = _split(options.get("tla"))
    documents = []
    for path in checkout.files(target, (".jsonnet",), options.get("recurse"), options.get("include"),
                               options.get("exclude")):
        rel = checkout.relpath(path)
        try:
            text = jsonnet.evaluate_file(path, ext_vars=ext_vars, ext_codes=ext_codes, tla_vars=tla_vars,
                                         tla_codes=tla_codes, import_callback=import_callback)
        except RuntimeError as err:
            raise GitOpsError("%s: jsonnet error: %s" % (rel, str(err).replace(checkout.root + os.sep, "")), file=rel)
        documents.append((rel, text))
    return documents, "jsonnet %s" % getattr(jsonnet, "version", "unknown")
