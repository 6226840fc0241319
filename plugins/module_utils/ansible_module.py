# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The thin shell every module shares: build the AnsibleModule, call the engine, shape errors."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from .deps import MissingLibrary
from .errors import GitOpsError


def run_module(argument_spec, engine_call, **module_kwargs):
    """Run ``engine_call(module) -> dict`` and exit with its result.

    A GitOpsError becomes fail_json with its message and structured details; a missing Python
    library becomes Ansible's standard "Failed to import the required Python library" failure.
    """
    module_kwargs.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=argument_spec, **module_kwargs)
    try:
        result = engine_call(module)
    except MissingLibrary as err:
        module.fail_json(msg=missing_required_lib(err.library, reason="for " + err.purpose), exception=err.import_traceback,
                         **err.details)
    except GitOpsError as err:
        module.fail_json(msg=str(err), **err.details)
    module.exit_json(**result)
