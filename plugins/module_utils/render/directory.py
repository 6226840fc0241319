# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Plain manifests: ``.yaml``, ``.yml`` and ``.json`` files of a directory (its subfolders with ``recurse``),
SOPS- or Vault-encrypted ones decrypted in memory."""

from __future__ import annotations

from ..deps import require_yaml

EXTENSIONS = (".yaml", ".yml", ".json")


def render(checkout, target, options):
    yaml = require_yaml("rendering type=directory")
    files = checkout.files(target, EXTENSIONS, options.get("recurse"), options.get("include"), options.get("exclude"))
    documents = options["decryptor"].texts([(path, checkout.relpath(path), checkout.read(path)) for path in files])
    return documents, "PyYAML %s" % yaml.__version__
