# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Notifications: tell people and systems what a run did to each application.

Input is what the run report gets (one record per application, see report.py); each record
becomes at most one event, the most important that applies:

  rolled_back      a sync failed and the last healthy revision was applied again
  sync_failed      a step failed (fetch, render, diff, apply, health)
  health_degraded  the sync went through but the application is Degraded
  drift_found      the cluster differs from Git and was left so (no self_heal, or check mode)
  sync_succeeded   a new revision was applied, or drift undone
Unchanged, skipped and suspended applications send nothing, so a quiet reconcile stays quiet.

Targets: ``webhook`` (POST of the event as JSON, see ``event_body``), ``slack`` (incoming
webhook, also Mattermost / Rocket.Chat: ``{"text": ...}``), and commit statuses on the revision
through the REST APIs of ``github``, ``gitlab`` and ``gitea``.

Delivery never fails the run: every request has a timeout; connection errors, timeouts, 429 and
5xx answers are retried ``retries`` times with a short back-off; a target that stayed unreachable
is not tried again in this run (so a dead receiver costs one retry cycle, not one per app). Each
delivery is reported (target name, app, event, HTTP status, attempts, error). URLs, headers and
tokens may be secrets: they never appear in results or messages. Requests go through Ansible's
open_url (proxy settings, system CA bundle), which ansible-test asks of every HTTP client.
"""

from __future__ import annotations

import datetime
import json
import os
import time
import urllib.error
import urllib.parse

from ansible.module_utils.urls import ConnectionError as UrlConnectionError, open_url

from ..errors import GitOpsError
from .run_report import app_row

EVENTS = ("sync_succeeded", "sync_failed", "health_degraded", "drift_found", "rolled_back")
TARGET_TYPES = ("webhook", "slack", "github", "gitlab", "gitea")
COMMIT_STATUS_TYPES = ("github", "gitlab", "gitea")
DEFAULT_API_URLS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com"}
RETRYABLE_STATUS = (429, 500, 502, 503, 504)
USER_AGENT = "gitops.k8s-notify"
# Commit status state per event, in each forge's own words.
STATES = {
    "github": {"sync_succeeded": "success", "drift_found": "error"},
    "gitlab": {"sync_succeeded": "success", "drift_found": "failed"},
    "gitea": {"sync_succeeded": "success", "drift_found": "warning"},
}
FAILURE_STATE = {"github": "failure", "gitlab": "failed", "gitea": "failure"}
TITLES = {
    "sync_succeeded": "synced",
    "sync_failed": "sync failed",
    "health_degraded": "health degraded",
    "drift_found": "drift found",
    "rolled_back": "rolled back",
}
SLACK_ICONS = {"sync_succeeded": ":white_check_mark:", "sync_failed": ":x:", "health_degraded": ":warning:",
               "drift_found": ":mag:", "rolled_back": ":rewind:"}


def event_of(row):
    """The one event a report row is worth, or None."""
    if row["outcome"] == "rolled back":
        return "rolled_back"
    if not row["ok"]:
        return "sync_failed"
    if row["health"] == "DEGRADED":
        return "health_degraded"
    if row["outcome"] in ("drift", "would heal"):
        return "drift_found"
    if row["outcome"] in ("synced", "healed"):
        return "sync_succeeded"
    return None


def summary_of(event, row):
    """One line for people: what happened to which app, where, at which revision, and why."""
    where = "%s@%s" % (row["app"], row["cluster"]) if row.get("cluster") else row["app"]
    at = " at %s" % row["short_revision"] if row.get("short_revision") else ""
    line = "%s: %s%s" % (where, TITLES[event], at)
    if row.get("commit"):
        line += " (%s)" % row["commit"]
    if event in ("sync_failed", "rolled_back") and row.get("failed_step"):
        line += " - failed at %s: %s" % (row["failed_step"], row["message"])
    if event == "rolled_back" and row.get("rollback"):
        line += "; rolled back to %s" % row["rollback"]["short_revision"]
    if event == "health_degraded" and row.get("unhealthy"):
        line += " - " + "; ".join("%s: %s" % (u["object"], u["message"] or u["status"]) for u in row["unhealthy"][:3])
    if event == "drift_found" and row.get("drift"):
        line += " - " + ", ".join(d["object"] for d in row["drift"][:5])
    return line


def event_body(event, row, mode=None, check_mode=False, link=None, now=None):
    """The JSON document a generic webhook receives (documented in the notify module and docs/awx.md)."""
    return {
        "event": event,
        "summary": summary_of(event, row),
        "app": row["app"],
        "cluster": row.get("cluster"),
        "namespace": row.get("namespace"),
        "mode": mode,
        "check_mode": bool(check_mode),
        "revision": row.get("revision"),
        "short_revision": row.get("short_revision"),
        "commit": row.get("commit"),
        "author": row.get("author"),
        "sync": row["sync"],
        "health": row["health"],
        "outcome": row["outcome"],
        "message": row.get("message") or "",
        "failed_step": row.get("failed_step"),
        "changes": row.get("changes") or {},
        # Objects only: diffs stay in the report (they are masked, but need not travel).
        "drift": [{"object": d["object"], "action": d["action"]} for d in row.get("drift") or []],
        "unhealthy": row.get("unhealthy") or [],
        "rollback": row.get("rollback"),
        "link": link,
        "time": (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# -- one request per target type -------------------------------------------------------------

def _token(target):
    if target.get("token"):
        return target["token"]
    if target.get("token_env"):
        value = os.environ.get(target["token_env"])
        if not value:
            raise GitOpsError("the environment variable %s named by token_env is not set" % target["token_env"])
        return value
    return None


def _commit_status(target, event, body):
    kind = target["type"]
    state = STATES[kind].get(event, FAILURE_STATE[kind])
    context = "%s/%s/%s" % (target.get("context") or "gitops.k8s", body["cluster"], body["app"])
    description = body["summary"] if len(body["summary"]) <= 140 else body["summary"][:137] + "..."
    base = (target.get("url") or DEFAULT_API_URLS.get(kind) or "").rstrip("/")
    repo, sha, token = target["repository"], body["revision"], _token(target)
    payload = {"state": state, "description": description}
    if body["link"]:
        payload["target_url"] = body["link"]
    if kind == "gitlab":
        url = "%s/api/v4/projects/%s/statuses/%s" % (base, urllib.parse.quote(repo, safe=""), sha)
        payload["name"] = context
        headers = {"PRIVATE-TOKEN": token} if token else {}
    elif kind == "github":
        url = "%s/repos/%s/statuses/%s" % (base, repo, sha)
        payload["context"] = context
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if token:
            headers["Authorization"] = "Bearer " + token
    else:
        url = "%s/api/v1/repos/%s/statuses/%s" % (base, repo, sha)
        payload["context"] = context
        headers = {"Authorization": "token " + token} if token else {}
    return url, payload, headers


def request_for(target, event, body):
    """(url, JSON payload, headers) of one delivery, or a reason to skip it."""
    kind = target["type"]
    if kind == "webhook":
        return target["url"], body, dict({"X-GitOps-Event": event}, **(target.get("headers") or {}))
    if kind == "slack":
        text = "%s %s" % (SLACK_ICONS[event], body["summary"])
        if body["link"]:
            text += " <%s|report>" % body["link"]
        return target["url"], {"text": text}, dict(target.get("headers") or {})
    if not body["revision"]:
        return "no revision to set a commit status on"
    return _commit_status(target, event, body)


def post(url, payload, headers, timeout):
    """POST JSON once; return the HTTP status (raises for network errors and timeouts)."""
    try:
        # No ~/.netrc: its credentials are for other uses, not for whoever receives notifications.
        with open_url(url, data=json.dumps(payload).encode(), method="POST", timeout=timeout, http_agent=USER_AGENT,
                      headers=dict({"Content-Type": "application/json"}, **headers), use_netrc=False) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def deliver(url, payload, headers, timeout, retries):
    """Send with retries; return (status or None, attempts, error or None)."""
    status, error, attempt = None, None, 0
    for attempt in range(1, retries + 2):
        try:
            status = post(url, payload, headers, timeout)
            error = None if 200 <= status < 300 else "HTTP %d" % status
        except (OSError, ValueError, UrlConnectionError) as err:  # URLError, timeouts, refused, TLS, a bad URL
            status, error = None, _reason(err)
        if error is None or (status is not None and status not in RETRYABLE_STATUS):
            break
        if attempt <= retries:
            time.sleep(min(2 ** (attempt - 1), 10))
    return status, attempt, error


def _reason(err):
    reason = getattr(err, "reason", None) or err
    return "timed out" if "timed out" in str(reason) else str(reason)


def _scrub(text, target):
    for secret in [target.get("url"), target.get("token")] + list((target.get("headers") or {}).values()):
        if secret:
            text = text.replace(str(secret), "********")
    return text


def target_name(target, index):
    return target.get("name") or "%s-%d" % (target["type"], index)


def notify(records, targets, cluster=None, mode=None, check_mode=False, link=None, timeout=10.0, retries=2):
    """Send every application's event to every target that wants it; return the deliveries."""
    rows = [app_row(r) for r in records]
    events = [(event_of(row), row) for row in rows if cluster is None or row.get("cluster") == cluster]
    events = [(event, row) for event, row in events if event]
    deliveries, unreachable = [], set()
    for index, target in enumerate(targets):
        name = target_name(target, index)
        for event, row in events:
            if event not in (target.get("events") or EVENTS):
                continue
            done = {"target": name, "type": target["type"], "app": row["app"], "cluster": row.get("cluster"),
                    "event": event, "ok": False, "status": None, "attempts": 0, "error": None}
            deliveries.append(done)
            if name in unreachable:
                done["error"] = "skipped: the target did not answer earlier in this run"
                continue
            try:
                prepared = request_for(target, event, event_body(event, row, mode, check_mode, link))
            except GitOpsError as err:
                done["error"] = str(err)
                continue
            if isinstance(prepared, str):
                done["error"] = "skipped: " + prepared
                continue
            status, attempts, error = deliver(*prepared, timeout=timeout, retries=retries)
            done.update(ok=error is None, status=status, attempts=attempts, error=_scrub(error, target) if error else None)
            if status is None and error:
                unreachable.add(name)
    return deliveries


def validate_targets(targets):
    """Refuse a target that cannot work, naming it (types and events are checked by the argument spec)."""
    for index, target in enumerate(targets):
        name = target_name(target, index)
        kind = target["type"]
        if kind in ("webhook", "slack", "gitea") and not target.get("url"):
            raise GitOpsError("gitops_notify target %s (%s) needs url" % (name, kind), target=name)
        if kind in COMMIT_STATUS_TYPES and not target.get("repository"):
            raise GitOpsError("gitops_notify target %s (%s) needs repository (owner/name or the GitLab project path)"
                              % (name, kind), target=name)
        # The forges create no commit status without a token (401): every delivery would fail.
        if kind in COMMIT_STATUS_TYPES and not (target.get("token") or target.get("token_env")):
            raise GitOpsError("gitops_notify target %s (%s) needs token or token_env: the forge sets no commit status "
                              "without one" % (name, kind), target=name)


def warnings_of(deliveries):
    return ["notification %s of %s@%s to %s failed after %d attempt(s): %s" % (
        d["event"], d["app"], d["cluster"], d["target"], d["attempts"], d["error"])
        for d in deliveries if not d["ok"] and not (d["error"] or "").startswith("skipped: no revision")]
