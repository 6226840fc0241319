# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""``*.j2`` templates rendered in Jinja2's immutable sandbox (manifests next to them are read as
``directory`` reads them, SOPS- or Vault-encrypted ones decrypted).

Only ``vars`` are visible: no Ansible filters, lookups or globals that could reach files, the
environment, the network or processes; undefined variables are errors. Includes and imports
resolve inside the checkout only.
"""

from __future__ import annotations

import os
import sys

from ..deps import import_library
from ..errors import GitOpsError
from .directory import EXTENSIONS


def _environment(checkout):
    jinja2 = import_library("jinja2", "Jinja2", "rendering type=jinja")
    sandbox = import_library("jinja2.sandbox", "Jinja2", "rendering type=jinja")

    class CheckoutLoader(jinja2.FileSystemLoader):
        def get_source(self, environment, template):
            source, filename, uptodate = super().get_source(environment, template)
            if not checkout.contains(filename):
                raise jinja2.TemplateNotFound("%s (outside the checkout)" % template)
            return source, filename, uptodate

    env = sandbox.ImmutableSandboxedEnvironment(loader=CheckoutLoader(checkout.root), undefined=jinja2.StrictUndefined,
                                                keep_trailing_newline=True, autoescape=False)
    return env, jinja2


def _template_line(filename):
    """The line of ``filename`` the current exception was raised at, from Jinja's rewritten traceback."""
    tb, line = sys.exc_info()[2], None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(checkout, target, options):
    env, jinja2 = _environment(checkout)
    variables = options.get("vars") or {}
    files = checkout.files(target, EXTENSIONS + (".j2",), options.get("recurse"), options.get("include"),
                           options.get("exclude"))
    documents = []
    for path in files:
        rel = checkout.relpath(path)
        if not path.endswith(".j2"):
            documents.append((rel, options["decryptor"].text(path, rel, checkout.read(path))))
            continue
        try:
            documents.append((rel, env.get_template(rel.replace(os.sep, "/")).render(variables)))
        except jinja2.TemplateSyntaxError as err:
            where = err.filename and checkout.relpath(err.filename) or rel
            raise GitOpsError("%s:%s: template syntax error: %s" % (where, err.lineno, err.message),
                              file=rel, line=err.lineno)
        except Exception as err:  # undefined variables, sandbox refusals, errors raised by filters
            line = _template_line(path)
            raise GitOpsError("%s%s: template error: %s: %s" % (rel, ":%s" % line if line else "", type(err).__name__, err),
                              file=rel, line=line)
    return documents, "Jinja2 %s (sandboxed)" % jinja2.__version__
