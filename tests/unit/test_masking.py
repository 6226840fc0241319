"""Secret values never leave the engine: masking of objects, pairs and free text."""

import base64

from ansible_collections.gitops.k8s.plugins.module_utils.masking import (NEW, OLD, UNCHANGED, mask_pair, mask_secret,
                                                                         redact)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def secret(**data):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "prod"},
            "data": {k: b64(v) for k, v in data.items()}}


def test_mask_pair_tells_which_keys_changed_without_values():
    before, after = mask_pair(secret(user="admin", password="hunter2"), secret(user="admin", password="s3cr3t!", new="x1y2"))
    assert before["data"] == {"user": UNCHANGED, "password": OLD}
    assert after["data"] == {"user": UNCHANGED, "password": NEW, "new": NEW}
    text = repr(before) + repr(after)
    for value in ("admin", "hunter2", "s3cr3t!", b64("hunter2"), b64("s3cr3t!"), b64("x1y2")):
        assert value not in text


def test_mask_pair_handles_create_delete_and_string_data():
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"token": "abc123"}}
    before, after = mask_pair(None, desired)
    assert before is None and after["stringData"] == {"token": NEW}
    before, after = mask_pair(secret(token="abc123"), None)
    assert after is None and before["data"] == {"token": OLD}
    assert desired["stringData"] == {"token": "abc123"}, "the caller's object must not be modified"


def test_last_applied_annotation_is_masked():
    live = secret(password="hunter2")
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"%s"}}' % b64("hunter2")}
    assert b64("hunter2") not in repr(mask_secret(live))
    assert b64("hunter2") not in repr(mask_pair(live, live))


def test_non_secrets_pass_through_untouched():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"password": "visible"}}
    assert mask_secret(cm) is cm
    assert mask_pair(cm, cm) == (cm, cm)


def test_redact_removes_plain_and_base64_values_from_messages():
    obj = secret(password="hunter2")
    obj["stringData"] = {"api": "tok-42"}
    message = 'Secret "db" is invalid: data[password]: %s / hunter2 / tok-42 / %s' % (b64("hunter2"), b64("tok-42"))
    out = redact(message, [obj])
    for value in ("hunter2", b64("hunter2"), "tok-42", b64("tok-42")):
        assert value not in out
    assert out.startswith('Secret "db" is invalid: data[password]: ***')
