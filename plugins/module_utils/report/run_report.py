# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The run report: one row per application, as JSON and as a self-contained HTML page.

Input is what the sync role records for each application (``sync_result``): the raw results of
its steps (fetch, diff, apply, health, app info, rollback), the reconcile decision and the error
of the step that failed. This module turns them into the words a person reads -- SYNCED / OUT OF
SYNC, HEALTHY / PROGRESSING / DEGRADED, what changed, the drift and the history -- without
Ansible and without the cluster, so it is unit-tested on plain dicts.

Secret values never reach the report: diffs come from gitops.k8s.diff, which masks them, and
raw results are reduced to a known set of fields (no module invocation, no credentials).
"""

from __future__ import annotations

import datetime
import html
import json
import os
import tempfile

from ..app_result import Decision, Outcome
from ..errors import GitOpsError
from ..refs import describe

SYNCED, OUT_OF_SYNC, UNKNOWN = "SYNCED", "OUT OF SYNC", "UNKNOWN"
HEALTH_WORDS = ("HEALTHY", "SUSPENDED", "PROGRESSING", "MISSING", "DEGRADED", "UNKNOWN")
JSON_NAME, HTML_NAME = "report.json", "report.html"


def _ran(result):
    """A step that ran and succeeded (registered results of skipped tasks say ``skipped``)."""
    return isinstance(result, dict) and bool(result) and not result.get("skipped") and not result.get("failed")


def short(revision):
    """A commit's first 7 hex digits; a chart's revision (chart@version+digest12) whole."""
    first = (revision or "").split(" ")[0]
    return first if "@" in first else first[:7]


def _subject(commit):
    message = (commit or {}).get("message") or ""
    return message.strip().splitlines()[0] if message.strip() else ""


def _refs(items):
    return [describe(item.get("ref", item)) if isinstance(item, dict) else str(item) for item in items or []]


def _health_word(result):
    if not _ran(result) and not (isinstance(result, dict) and result.get("status")):
        return UNKNOWN
    status = str(result.get("status") or "").upper()
    return status if status in HEALTH_WORDS else UNKNOWN


def _changes(apply, diff):
    """What changed (after an apply) or would change (from a diff): {action: [Kind ns/name]}."""
    if _ran(apply) and any(apply.get(k) for k in ("created", "configured", "pruned")):
        return {action: _refs(apply.get(action)) for action in ("created", "configured", "pruned") if apply.get(action)}
    if _ran(diff):
        changes = {}
        for res in diff.get("resources") or []:
            if res.get("action") not in (None, "unchanged"):
                changes.setdefault(res["action"], []).append(describe(res))
        return changes
    return {}


def _outcome(record, applied, error):
    """One word for what the run did with this application."""
    decision, check = record.get("decision"), record.get("check_mode")
    if record.get("skipped"):
        return Outcome.SUSPENDED if record.get("suspended") else Outcome.SKIPPED
    if error:
        return Outcome.ROLLED_BACK if _ran((record.get("rollback") or {}).get("apply")) else Outcome.FAILED
    if decision in (Decision.ORPHANED, Decision.ABSENT, Decision.SUPERSEDED, Decision.HELD):
        return decision  # the decision and the outcome are one word
    if decision == Decision.REMOVED:
        return Outcome.WOULD_REMOVE if check else Outcome.REMOVED
    if decision == Decision.DRIFT:
        if not applied:
            return Outcome.DRIFT
        return Outcome.WOULD_HEAL if check else Outcome.HEALED
    if not applied or not (record.get("apply") or {}).get("changed"):
        return Outcome.UNCHANGED
    return Outcome.WOULD_SYNC if check else Outcome.SYNCED


def _error(record):
    """The app's error; a step that failed without the role noting it still fails the row."""
    if record.get("error"):
        return record["error"]
    for step in ("fetch", "render", "diff", "apply", "health"):
        if (record.get(step) or {}).get("failed"):
            return {"step": step, "msg": record[step].get("msg") or "failed"}
    return {}


def _sync_word(record, applied, diff, error):
    if record.get("skipped"):
        return UNKNOWN
    if _ran((record.get("rollback") or {}).get("apply")):
        return OUT_OF_SYNC  # the cluster runs an older revision than Git asks for
    if applied and not record.get("check_mode"):
        return SYNCED
    if _ran(diff):
        return OUT_OF_SYNC if diff.get("changed") else SYNCED
    return OUT_OF_SYNC if error.get("step") in ("render", "diff", "apply") else UNKNOWN


def _unhealthy(health_result):
    return [{"object": describe(r.get("ref", r)), "status": r.get("status"), "message": r.get("message") or ""}
            for r in (health_result or {}).get("resources") or [] if r.get("status") != "Healthy"]


def _drift(diff):
    return [{"object": describe(r), "action": r.get("action"), "diff": r.get("diff") or ""}
            for r in diff.get("resources") or [] if r.get("action") not in (None, "unchanged")] if _ran(diff) else []


def _rollback_row(rollback):
    if not rollback:
        return None
    return {"revision": rollback.get("revision"), "short_revision": short(rollback.get("revision")),
            "ok": _ran(rollback.get("apply")) and _ran(rollback.get("health")), "message": rollback.get("msg") or ""}


def app_row(record):
    """Reduce one application's result (app_result.app_result) to a report row (plain JSON)."""
    fetch, diff, apply, health = (record.get(k) or {} for k in ("fetch", "diff", "apply", "health"))
    rollback = record.get("rollback") or {}
    info = (record.get("info") or {}).get("record") or {}  # the app's in-cluster record
    applied = _ran(apply)
    revision = apply.get("revision") if applied and apply.get("revision") else fetch.get("revision")
    error = _error(record)
    health_result = rollback.get("health") if _ran(rollback.get("apply")) else health
    return {
        "app": record.get("app"), "cluster": record.get("cluster"), "namespace": record.get("namespace"),
        "trigger": record.get("trigger"), "revision": revision, "short_revision": short(revision),
        "commit": _subject(fetch.get("commit")), "author": (fetch.get("commit") or {}).get("author"),
        "previous_revision": fetch.get("previous_revision"),
        "sync": _sync_word(record, applied, diff, error),
        "health": _health_word(health_result),
        "outcome": _outcome(record, applied, error),
        "ok": not error,
        "message": record.get("skipped") or error.get("msg") or record.get("note") or "",
        "failed_step": error.get("step"),
        "changes": _changes(apply, diff),
        "drift": _drift(diff),
        # left in the cluster by an app that does not prune: listed, not a difference
        "orphaned": [{"object": describe(r), "name": r.get("name")}
                     for r in (apply if applied else diff).get("orphaned") or []],
        "unhealthy": _unhealthy(health_result),
        "rollback": _rollback_row(rollback),
        # a window or a promotion gate held the change: {by, reason, until}; a push let through one: its reason
        "held": record.get("held"),
        "override": record.get("override"),
        # whom its requests acted as (None: the run's own identity) and its project (docs/teams-and-least-privilege.md)
        "identity": record.get("identity"), "service_account": record.get("service_account"),
        "project": record.get("project"),
        "history": list(info.get("history") or []),
        "duration": record.get("duration"),
    }


def summarize(rows):
    def count(pred):
        return sum(1 for r in rows if pred(r))

    return {
        "apps": len(rows),
        "synced": count(lambda r: r["sync"] == SYNCED),
        "out_of_sync": count(lambda r: r["sync"] == OUT_OF_SYNC),
        "healthy": count(lambda r: r["health"] == "HEALTHY"),
        "degraded": count(lambda r: r["health"] == "DEGRADED"),
        "failed": count(lambda r: not r["ok"]),
        "rolled_back": count(lambda r: r["outcome"] == Outcome.ROLLED_BACK),
        "skipped": count(lambda r: r["outcome"] in (Outcome.SKIPPED, Outcome.SUSPENDED)),
        "held": count(lambda r: r["outcome"] == Outcome.HELD),
        "changed": count(lambda r: r["outcome"] in Outcome.CHANGED),
    }


def _one_line(text, limit=600):
    """A multi-line error (e.g. every object the server rejected) as one line of bounded length."""
    text = " / ".join(line.strip() for line in (text or "").splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def failure_lines(rows):
    """One short line per failed application: the end-of-run summary of a push."""
    lines = []
    for row in rows:
        if row["ok"]:
            continue
        where = "%s (cluster %s)" % (row["app"], row["cluster"]) if row.get("cluster") else row["app"]
        step = " at %s" % row["failed_step"] if row.get("failed_step") else ""
        extra, rollback = "", row.get("rollback")
        if rollback and not rollback["revision"]:
            extra = "; not rolled back: %s" % rollback["message"]
        elif rollback:
            extra = "; rolled back to %s%s" % (rollback["short_revision"], "" if rollback["ok"] else " (rollback failed too)")
        lines.append("%s: failed%s: %s%s" % (where, step, _one_line(row["message"]), extra))
    return lines


def status_lines(rows):
    """One line per application for the end of the playbook output; a held change says why and until
    when, a push through a window the reason it was let through, an app with an identity whom it acted as."""
    return ["%s%s: %s, %s, %s%s%s%s%s" % (
        row["app"], "@%s" % row["cluster"] if row.get("cluster") else "", row["sync"], row["health"], row["outcome"],
        " at %s" % row["short_revision"] if row["short_revision"] else "", " (%s)" % row["commit"] if row["commit"] else "",
        " as %s" % row["service_account"] if row.get("service_account") else "", _gate_note(row)) for row in rows]


def _gate_note(row):
    if row.get("held") and row["ok"]:
        return ": %s" % row["held"]["reason"]
    if row.get("override"):
        return " [window overridden: %s]" % row["override"]
    return ""


# What each app row of the AWX job's stats (set_stats) keeps: enough to list the run, small for a fleet.
STATS_KEYS = ("app", "cluster", "revision", "sync", "health", "outcome")


def stats(built, html):
    """The ``gitops_report`` the playbooks publish with set_stats (built here: Jinja filters over
    the rows of 1,000 apps cost Ansible seconds)."""
    out = {"html": html, "summary": built["summary"], "failures": built["failures"],
           "apps": [{key: row.get(key) for key in STATS_KEYS} for row in built["apps"]]}
    if built.get("rollout"):  # an AWX workflow may branch on how the rollout went
        out["rollout"] = built["rollout"]
    return out


def build(records, mode, check_mode=False, now=None):
    """The whole report as a JSON-serialisable dict."""
    rows = [app_row(r) for r in records]
    rows.sort(key=lambda r: (str(r.get("cluster") or ""), str(r.get("app") or "")))
    return {
        "generated": (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": mode,
        "check_mode": bool(check_mode),
        "summary": summarize(rows),
        "failures": failure_lines(rows),
        "lines": status_lines(rows),
        "apps": rows,
    }


# -- HTML ----------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#c5cad6}
main{padding:16px 24px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}
th,td{text-align:left;padding:8px 10px;border-top:1px solid #e6e9ef;vertical-align:top}
th{background:#eef0f4;font-weight:600}
.badge{display:inline-block;border-radius:4px;padding:1px 7px;font-size:12px;font-weight:700;white-space:nowrap}
.SYNCED,.HEALTHY,.ok{background:#d8f3df;color:#135c2b}
.OUT-OF-SYNC,.PROGRESSING,.MISSING,.SUSPENDED{background:#fff0c2;color:#6b4d00}
.DEGRADED,.failed{background:#fbd5d5;color:#8a1111}
.UNKNOWN{background:#e4e6eb;color:#3a4150}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#1d2330;color:#e8eaf0;padding:10px;overflow:auto;border-radius:4px;font:12px ui-monospace,monospace}
pre .add{color:#8ee59f} pre .del{color:#ff9c9c} pre .hunk{color:#8fb8ff}
details{margin:4px 0} summary{cursor:pointer;color:#2954a3}
.muted{color:#69707f} .msg{color:#8a1111;white-space:pre-wrap}
"""


def _e(value):
    return html.escape("" if value is None else str(value))


def _badge(word, cls=None):
    return '<span class="badge %s">%s</span>' % (_e(cls or word.replace(" ", "-")), _e(word))


def _diff_html(text):
    lines = []
    for line in text.splitlines():
        cls = "add" if line.startswith("+") and not line.startswith("+++") else \
              "del" if line.startswith("-") and not line.startswith("---") else \
              "hunk" if line.startswith("@@") else ""
        lines.append('<span class="%s">%s</span>' % (cls, _e(line)) if cls else _e(line))
    return "<pre>%s</pre>" % "\n".join(lines)


def _time(value):
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return value or ""


def _history_health(entry):
    """The health_wait verdict recorded for one sync of the history; nobody waited: a dash."""
    if not entry.get("health"):
        return '<span class="muted">-</span>'
    word = str(entry["health"]).upper()
    return _badge(word if word in HEALTH_WORDS else UNKNOWN)


def _history_note(entry):
    notes = []
    if entry.get("rollback"):
        notes.append("rollback of <code>%s</code>" % _e(short(entry.get("rollback_of"))))
    if entry.get("override"):
        notes.append("window overridden: %s" % _e(entry["override"]))
    return "; ".join(notes)


def _details(row):
    parts = []
    if row["message"] and not row["ok"]:
        parts.append('<div class="msg">%s</div>' % _e(row["message"]))
    if row.get("held") and row["ok"]:
        parts.append('<p class="held">Held by a %s: %s</p>' % (_e(row["held"]["by"] or "gate"), _e(row["held"]["reason"])))
    if row.get("override"):
        parts.append('<p class="override">Pushed through a deployment window: %s</p>' % _e(row["override"]))
    rb = row["rollback"]
    if rb and not rb["revision"]:
        parts.append('<p class="rollback">Not rolled back: %s</p>' % _e(rb["message"]))
    elif rb:
        parts.append('<p class="rollback">Rolled back to <code>%s</code>: %s</p>'
                     % (_e(rb["short_revision"]), "healthy again" if rb["ok"] else _e(rb["message"] or "rollback failed")))
    if row["unhealthy"]:
        items = "".join("<li>%s %s: %s</li>" % (_badge(u["status"].upper() if u["status"] else UNKNOWN),
                                                _e(u["object"]), _e(u["message"])) for u in row["unhealthy"])
        parts.append("<details open><summary>Not healthy (%d)</summary><ul>%s</ul></details>"
                     % (len(row["unhealthy"]), items))
    if row["drift"]:
        body = "".join("<p><b>%s</b> %s</p>%s" % (_e(d["action"]), _e(d["object"]), _diff_html(d["diff"]) if d["diff"] else "")
                       for d in row["drift"])
        title = "What changed" if row["outcome"] in (Outcome.SYNCED, Outcome.HEALED) else "Diff against the cluster"
        parts.append("<details%s><summary>%s (%d object%s)</summary>%s</details>"
                     % (" open" if row["sync"] == OUT_OF_SYNC else "", title, len(row["drift"]),
                        "" if len(row["drift"]) == 1 else "s", body))
    if row.get("orphaned"):
        items = "".join("<li>%s</li>" % _e(o["object"]) for o in row["orphaned"])
        parts.append("<details><summary>Orphaned: no longer in Git, kept because the app does not prune (%d)</summary>"
                     "<ul>%s</ul></details>" % (len(row["orphaned"]), items))
    if row["history"]:
        trs = "".join(
            '<tr class="sync"><td>%s</td><td><code>%s</code></td><td>%s</td><td class="health">%s</td><td>%s</td>'
            "<td>%s</td></tr>"
            % (_e(_time(h.get("time"))), _e(short(h.get("revision"))), _e(h.get("result")), _history_health(h),
               _e(h.get("trigger")), _history_note(h))
            for h in reversed(row["history"]))
        parts.append("<details><summary>History (%d)</summary><table><tr><th>time</th><th>revision</th>"
                     "<th>result</th><th>health</th><th>trigger</th><th></th></tr>%s</table></details>"
                     % (len(row["history"]), trs))
    return "".join(parts)


def _changes_html(changes):
    if not changes:
        return '<span class="muted">nothing</span>'
    return "<br>".join("%s %d: %s" % (_e(action), len(objs), _e(", ".join(objs[:5]) + (" ..." if len(objs) > 5 else "")))
                       for action, objs in changes.items())


def render_html(report):
    rows = []
    for row in report["apps"]:
        commit = _e(row["commit"]) if row["commit"] else '<span class="muted">no commit</span>'
        rows.append(
            '<tr class="app" data-app="%s"><td><b>%s</b><div class="muted">%s%s%s</div></td>'
            "<td><code>%s</code> %s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>"
            % (_e(row["app"]), _e(row["app"]),
               _e(row["cluster"] or ""), (" / " + _e(row["namespace"])) if row["namespace"] else "",
               ' <span class="identity">as %s</span>' % _e(row["service_account"]) if row.get("service_account") else "",
               _e(row["short_revision"] or "-"), commit, _badge(row["sync"]), _badge(row["health"]),
               _badge(row["outcome"], "failed") if not row["ok"] else _e(row["outcome"]), _changes_html(row["changes"])))
        details = _details(row)
        if details:
            rows.append('<tr class="details"><td></td><td colspan="5">%s</td></tr>' % details)
    summary = report["summary"]
    cards = "".join('<div class="card"><b>%d</b>%s</div>' % (summary[key], label) for key, label in (
        ("apps", "applications"), ("synced", "synced"), ("out_of_sync", "out of sync"),
        ("healthy", "healthy"), ("degraded", "degraded"), ("failed", "failed"), ("skipped", "skipped"),
        ("held", "held")))
    title = "gitops.k8s %s%s" % (report["mode"], " (check mode)" if report["check_mode"] else "")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>%s</title><style>%s</style></head><body>"
        "<header><h1>%s</h1><p>generated %s</p></header><main>"
        '<div class="cards">%s</div>'
        "%s"
        '<table id="apps"><tr><th>application</th><th>revision</th><th>sync</th><th>health</th>'
        "<th>outcome</th><th>changes</th></tr>%s</table>"
        "</main></body></html>\n"
        % (_e(title), CSS, _e(title), _e(report["generated"]), cards, _rollout_html(report.get("rollout")),
           "".join(rows) or '<tr><td colspan="6" class="muted">no applications</td></tr>')
    )


def _rollout_html(rollout):
    """The waves of a rollout (report/rollout_report.py) and what each cluster runs."""
    if not rollout:
        return ""
    waves = "".join('<li class="wave %s">%s</li>' % (_e(w["state"].replace(" ", "-")), _e(w["message"]))
                    for w in rollout["waves"])
    clusters = "".join(
        "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td></tr>"
        % (_e(c["cluster"]), c["wave"], _e(c["state"]),
           ", ".join("%s <code>%s</code>" % (_e(app), _e(short(rev) or "-")) for app, rev in c["runs"].items()))
        for c in rollout["clusters"])
    stopped = '<p class="msg">%s; the later waves keep their revision</p>' % _e(rollout["stopped"]) \
        if rollout["stopped"] else ""
    return ('<section id="rollout"><h2>Rollout</h2><ul>%s</ul>%s<table><tr><th>cluster</th><th>wave</th>'
            "<th>state</th><th>runs</th></tr>%s</table></section>" % (waves, stopped, clusters))


def _write(path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write(dest, report):
    """Write report.json and report.html into ``dest``; return their paths."""
    try:
        os.makedirs(dest, exist_ok=True)
        paths = {"json": os.path.join(dest, JSON_NAME), "html": os.path.join(dest, HTML_NAME)}
        _write(paths["json"], json.dumps(report, indent=1, sort_keys=True, default=str))
        _write(paths["html"], render_html(report))
    except OSError as err:
        raise GitOpsError("cannot write the report to %s: %s" % (dest, err), dest=dest)
    return paths
