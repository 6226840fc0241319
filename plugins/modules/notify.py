#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: notify
short_description: Send what a GitOps run did to webhooks, Slack and Git commit statuses
version_added: 0.1.0
description:
  - Turns the per-application records of a run (the list M(gitops.k8s.report) receives) into events and sends them to
    the O(targets). The C(push) and C(reconcile) playbooks call it for every cluster host that has C(gitops_notify)
    set, after the report is written, with C(gitops_notify.targets), C(timeout), C(retries) and C(link).
  - "Each application gives at most one event, the most important that applies: C(rolled_back) (a sync failed and the
    last healthy revision was applied again), C(sync_failed) (a step failed), C(health_degraded) (synced but Degraded),
    C(drift_found) (the cluster differs from Git and was left so, or would be healed in check mode),
    C(sync_succeeded) (a new revision applied or drift undone). Unchanged, skipped and suspended applications send
    nothing."
  - "A C(webhook) target receives a POST with C(Content-Type: application/json), the header C(X-GitOps-Event: <event>),
    the target's O(targets[].headers) and this body: C(event), C(summary) (one line), C(app), C(cluster), C(namespace),
    C(mode) (push or reconcile), C(check_mode), C(revision), C(short_revision), C(commit) (subject), C(author), C(sync)
    (SYNCED, OUT OF SYNC, UNKNOWN), C(health) (HEALTHY, PROGRESSING, DEGRADED, ...), C(outcome), C(message),
    C(failed_step), C(changes) ({created, configured, pruned} object lists), C(drift) ([{object, action}], no diff),
    C(unhealthy) ([{object, status, message}]), C(rollback) ({revision, short_revision, ok, message} or null),
    C(link) and C(time) (UTC, ISO 8601)."
  - 'A C(slack) target receives C({"text": "<icon> <summary>"}), what Slack, Mattermost and Rocket.Chat incoming
    webhooks take.'
  - C(github), C(gitlab) and C(gitea) targets set a commit status on the application's revision in
    O(targets[].repository) through the forge's REST API, with the context C(<context>/<cluster>/<app>); the state
    is success for C(sync_succeeded), failure (GitLab C(failed)) for failures, rollbacks and degraded health, and for
    C(drift_found) C(error) (GitHub), C(failed) (GitLab), C(warning) (Gitea). An event without a revision (the fetch
    failed) sets no status.
  - Delivery never fails the task or changes the sync. Each request has a O(timeout); connection errors, timeouts,
    429 and 5xx answers are retried O(retries) times with a back-off of 1, 2, 4... seconds; a target that did not
    answer at all is not tried again in this run. Failed deliveries are returned in RV(deliveries) and as warnings.
  - URLs, headers and tokens are treated as secrets - they never appear in the results or the output. Give tokens from
    Ansible Vault (O(targets[].token)) or from the controller's environment (O(targets[].token_env)).
  - Notifications are sent in check mode too (a check-mode reconcile is a drift report); the task never reports a
    change.
author:
  - gitops.k8s developers (@gitops-k8s)
attributes:
  check_mode:
    support: full
    description: Sends in check mode too; events then describe what would happen (C(drift_found) for would heal).
  diff_mode:
    support: none
    description: Nothing to diff.
options:
  results:
    description:
      - One record per application, exactly as given to M(gitops.k8s.report) (the C(sync_result) of each app).
    type: list
    elements: dict
    required: true
  targets:
    description: Where to send the events (C(gitops_notify.targets)).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A name for this target in results and warnings (default C(<type>-<index>)).
        type: str
      type:
        description: The kind of receiver.
        type: str
        choices: [webhook, slack, github, gitlab, gitea]
        required: true
      url:
        description:
          - For C(webhook) and C(slack), the URL to POST to (required; a Slack webhook URL is a secret).
          - For C(github), C(gitlab) and C(gitea), the base URL of the forge (default C(https://api.github.com) for
            GitHub, for GitHub Enterprise C(https://<host>/api/v3); C(https://gitlab.com) for GitLab; required for
            Gitea, e.g. C(https://gitea.example.com)).
        type: str
      headers:
        description: Extra HTTP headers, e.g. C(Authorization) for a webhook; treated as secrets.
        type: dict
      token:
        description:
          - The API token of a commit status target (GitHub C(Bearer), GitLab C(PRIVATE-TOKEN), Gitea C(token)).
          - A commit status target needs it or O(targets[].token_env) (the forges set no status without a token).
        type: str
      token_env:
        description: Name of an environment variable of the controller that holds the token, instead of O(targets[].token).
        type: str
      repository:
        description: For commit status targets, C(owner/name) (GitLab also C(group/subgroup/project) or the project id).
        type: str
      context:
        description: Prefix of the commit status context; the cluster and app are appended.
        type: str
        default: gitops.k8s
      events:
        description: Only these events go to this target (default every event).
        type: list
        elements: str
        choices: [sync_succeeded, sync_failed, health_degraded, drift_found, rolled_back]
  cluster:
    description: Only the applications of this cluster (inventory host) notify; default every record given.
    type: str
  mode:
    description: Which playbook produced the run; sent as C(mode).
    type: str
    choices: [push, reconcile]
  link:
    description: A URL to the run (for example the AWX job); sent as C(link), as the commit status target URL and in Slack.
    type: str
  timeout:
    description: Seconds to wait for one answer.
    type: float
    default: 10
  retries:
    description: How many times a failed delivery (no answer, 429 or 5xx) is tried again.
    type: int
    default: 2
seealso:
  - module: gitops.k8s.report
"""

EXAMPLES = r"""
- name: Tell the team and the forge what this run did on this cluster
  gitops.k8s.notify:
    results: "{{ groups['gitops_app_hosts'] | map('extract', hostvars, 'sync_result') | list }}"
    cluster: "{{ inventory_hostname }}"
    mode: reconcile
    link: "https://awx.example.com/#/jobs/playbook/{{ awx_job_id | default('') }}"
    targets:
      - name: chat
        type: slack
        url: "{{ vault_slack_webhook_url }}"
        events: [sync_failed, rolled_back, health_degraded, drift_found]
      - name: forge
        type: gitea
        url: https://gitea.example.com
        repository: team/deploy
        token_env: GITEA_TOKEN
      - name: pager
        type: webhook
        url: https://hooks.example.com/gitops
        headers:
          Authorization: "Bearer {{ vault_hook_token }}"
"""

RETURN = r"""
deliveries:
  description:
    - One entry per event and target - C(target) (its name), C(type), C(app), C(cluster), C(event), C(ok), C(status)
      (the last HTTP status, null when nothing answered), C(attempts) and C(error) (null when delivered).
  returned: always
  type: list
  elements: dict
  sample: [{"target": "chat", "type": "slack", "app": "web", "cluster": "prod", "event": "sync_failed", "ok": true,
            "status": 200, "attempts": 1, "error": null}]
sent:
  description: How many deliveries succeeded.
  returned: always
  type: int
  sample: 2
undelivered:
  description: How many deliveries failed or were skipped (see C(error) in RV(deliveries); failures are also warnings); they never fail the task.
  returned: always
  type: int
  sample: 0
"""

from ansible_collections.gitops.k8s.plugins.module_utils.tasks.ansible_module import run_module
from ansible_collections.gitops.k8s.plugins.module_utils.report.notify import EVENTS, TARGET_TYPES, notify, validate_targets, warnings_of

ARGSPEC = {
    "results": {"type": "list", "elements": "dict", "required": True},
    "targets": {"type": "list", "elements": "dict", "required": True, "options": {
        "name": {"type": "str"},
        "type": {"type": "str", "choices": list(TARGET_TYPES), "required": True},
        "url": {"type": "str", "no_log": True},
        "headers": {"type": "dict", "no_log": True},
        "token": {"type": "str", "no_log": True},
        "token_env": {"type": "str", "no_log": False},
        "repository": {"type": "str"},
        "context": {"type": "str", "default": "gitops.k8s"},
        "events": {"type": "list", "elements": "str", "choices": list(EVENTS)},
    }},
    "cluster": {"type": "str"},
    "mode": {"type": "str", "choices": ["push", "reconcile"]},
    "link": {"type": "str"},
    "timeout": {"type": "float", "default": 10},
    "retries": {"type": "int", "default": 2},
}


def send(call):
    params = call.params
    validate_targets(params["targets"])
    deliveries = notify(params["results"], params["targets"], cluster=params["cluster"], mode=params["mode"],
                        check_mode=call.check_mode, link=params["link"], timeout=params["timeout"],
                        retries=max(0, params["retries"]))
    # Telling someone about the run changes nothing that Ansible manages; failed deliveries are warnings.
    return {"changed": False, "deliveries": deliveries, "sent": sum(1 for d in deliveries if d["ok"]),
            "undelivered": sum(1 for d in deliveries if not d["ok"]), "warnings": list(warnings_of(deliveries))}


def main():
    run_module(ARGSPEC, send)


if __name__ == "__main__":
    main()
