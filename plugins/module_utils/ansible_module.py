"""The thin shell every module shares: build the AnsibleModule, call the engine, shape errors."""

from ansible.module_utils.basic import AnsibleModule

from .errors import GitOpsError


def run_module(argument_spec, engine_call, **module_kwargs):
    """Run ``engine_call(module) -> dict`` and exit with its result.

    A GitOpsError becomes fail_json with its message and structured details.
    """
    module_kwargs.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=argument_spec, **module_kwargs)
    try:
        result = engine_call(module)
    except GitOpsError as err:
        module.fail_json(msg=str(err), **err.details)
    module.exit_json(**result)
