# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The one boundary between Ansible and the engine, module side (plugin_utils/ansible_action.py is the action side).

Every module and action plugin is an option spec plus one engine call, ``engine_call(call) -> dict``,
where ``call`` is a Call. What the boundary does with the returned dict, on both sides:

- ``ansible_diff`` (what Ansible shows with ``--diff``) becomes ``diff`` in diff mode and is
  dropped otherwise;
- ``failed: true`` with ``msg`` fails the task and keeps the rest of the result;
- a GitOpsError fails the task with its message and structured details, a missing Python
  library with Ansible's standard "Failed to import the required Python library" message.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ..deps import MissingLibrary
from ..errors import GitOpsError


class Call:
    """One run of a module or action: its validated options and how it was asked to run."""

    def __init__(self, params, check_mode=False, diff_mode=False, progress=None, hide=None, host=None):
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.host = host  # the inventory host an action runs for; unknown to a module
        # progress(line) shows a line while the task runs; None in a module, which cannot
        self.progress = progress
        self._hide = hide

    def hide(self, value):
        """Never show ``value`` in the result or the log (as if it came from a no_log option)."""
        if value:
            self._hide(value)


def shape_result(call, result):
    ansible_diff = result.pop("ansible_diff", None)
    if call.diff_mode and ansible_diff is not None:
        result["diff"] = ansible_diff
    return result


def failure(err):
    """The task result of a GitOpsError."""
    if isinstance(err, MissingLibrary):
        return dict(err.details, msg=missing_required_lib(err.library, reason="for " + err.purpose),
                    exception=err.import_traceback)
    return dict(err.details, msg=str(err))


# Ansible masks a no_log value wherever it appears in the result, inside other strings too: a value
# such as 3 or "on" would garble digests and names. Shorter values are not secrets worth that.
MASK_MIN_LENGTH = 4


def trivial_values(value):
    """The values (as strings) in ``value`` shorter than MASK_MIN_LENGTH."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from trivial_values(item)
    elif value is not None and len(str(value)) < MASK_MIN_LENGTH:
        yield str(value)


def run_module(argument_spec, engine_call, masked_options=(), **module_kwargs):
    """Run ``engine_call(call) -> dict`` in a module and exit with its result.

    ``masked_options``: options whose values may be secret (from a vault, say), declared
    ``no_log`` in ``argument_spec``: Ansible neither logs nor shows them and masks their values in
    the result, except values shorter than MASK_MIN_LENGTH. ``module_kwargs`` go to AnsibleModule
    (mutually_exclusive...); check mode is supported unless they say otherwise.
    """
    module_kwargs.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=argument_spec, **module_kwargs)
    call = Call(dict(module.params), module.check_mode, module._diff, hide=module.no_log_values.add)
    for name in masked_options:
        module.no_log_values.difference_update(trivial_values(module.params[name]))
    try:
        result = shape_result(call, engine_call(call))
    except GitOpsError as err:
        module.fail_json(**failure(err))
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)
