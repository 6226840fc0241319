# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Third-party Python libraries the engine needs, imported so that a missing one says what to install.

Importing any module_utils must work without them (ansible-doc, ansible-test sanity, a module
that never reads YAML), and a module process should not pay for a library it does not use:
each one is imported where it is first needed, PyYAML with ``require_yaml`` and the others with
``import_library`` (kubernetes alone takes a quarter of a second). Modules turn MissingLibrary
into Ansible's standard ``missing_required_lib`` failure.
"""

from __future__ import annotations

import functools
import importlib
import traceback

from .errors import GitOpsError


class MissingLibrary(GitOpsError):
    """A Python library is not installed on the host that runs the module."""

    def __init__(self, library, purpose, import_traceback):
        super().__init__("%s requires the %s Python library: pip install %s" % (purpose, library, library),
                         missing_library=library)
        self.library = library
        self.purpose = purpose
        self.import_traceback = import_traceback


class _Yaml:
    """PyYAML, with SafeLoader and SafeDumper the C ones when PyYAML was built with them (several
    times faster; PyYAML wheels ship them)."""

    def __init__(self, module):
        self._module = module
        self.SafeLoader = getattr(module, "CSafeLoader", module.SafeLoader)
        self.SafeDumper = getattr(module, "CSafeDumper", module.SafeDumper)

    def __getattr__(self, name):
        return getattr(self._module, name)


def require_yaml(purpose):
    """PyYAML (see _Yaml), or MissingLibrary (``purpose`` says what needed it)."""
    try:
        return _yaml()
    except ImportError:
        raise MissingLibrary("PyYAML", purpose, traceback.format_exc()) from None


@functools.lru_cache(maxsize=None)
def _yaml():
    import yaml

    return _Yaml(yaml)


def import_library(module_name, library, purpose):
    """Import ``module_name`` (pip package ``library``) or raise MissingLibrary."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        raise MissingLibrary(library, purpose, traceback.format_exc()) from None
