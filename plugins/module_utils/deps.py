# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Third-party Python libraries the engine needs, imported so that a missing one says what to install.

Importing any module_utils must work without them (ansible-doc, ansible-test sanity, a module
that never reads YAML): PyYAML is imported here once, guarded, and checked with ``require_yaml``
where it is used; the others are imported late with ``import_library`` (kubernetes takes long to
import and only cluster-facing code needs it). Modules turn MissingLibrary into Ansible's
standard ``missing_required_lib`` failure.
"""

from __future__ import annotations

import importlib
import traceback

from .errors import GitOpsError

# yaml, SafeDumper and SafeLoader are imported here to be imported from here
__all__ = ("MissingLibrary", "SafeDumper", "SafeLoader", "YAML_IMPORT_ERROR", "import_library", "require_yaml", "yaml")

try:
    import yaml
    try:  # the C loader/dumper are several times faster; PyYAML wheels ship them
        from yaml import CSafeDumper as SafeDumper
        from yaml import CSafeLoader as SafeLoader
    except ImportError:  # pragma: no cover - depends on how PyYAML was built
        from yaml import SafeDumper, SafeLoader
    YAML_IMPORT_ERROR = None
except ImportError:
    yaml = SafeDumper = SafeLoader = None
    YAML_IMPORT_ERROR = traceback.format_exc()


class MissingLibrary(GitOpsError):
    """A Python library is not installed on the host that runs the module."""

    def __init__(self, library, purpose, import_traceback):
        super().__init__("%s requires the %s Python library: pip install %s" % (purpose, library, library),
                         missing_library=library)
        self.library = library
        self.purpose = purpose
        self.import_traceback = import_traceback


def require_yaml(purpose):
    """Raise MissingLibrary unless PyYAML imported (``purpose`` says what needed it)."""
    if YAML_IMPORT_ERROR is not None:
        raise MissingLibrary("PyYAML", purpose, YAML_IMPORT_ERROR)


def import_library(module_name, library, purpose):
    """Import ``module_name`` (pip package ``library``) or raise MissingLibrary."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        raise MissingLibrary(library, purpose, traceback.format_exc()) from None
