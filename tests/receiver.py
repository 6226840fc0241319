"""A real HTTP receiver for notification tests: records every request and answers it as the service
its path names would, so a request the real service refuses fails the test that made it.

    python tests/receiver.py RECORD_FILE      prints the port it listens on (127.0.0.1), then serves

Every POST is appended to RECORD_FILE as one JSON line {method, path, headers (names in lower
case), body, time, status, refusal} before it is answered (``status``: the answer, null when there is
none; ``refusal``: why the service would refuse it, null when accepted). The first path segment
may choose the answer, so one process serves every test:

  /fail-twice/...   500 for the first two requests to that path, then answered as below
  /hang/...         never answers (the connection stays open until the client gives up)
  /status/NNN/...   always NNN

Otherwise the end of the path says which API is called, and the request is checked as that
service checks it (the rules, from each service's API documentation, are in the check_* functions):

  .../api/v1/repos/OWNER/REPO/statuses/SHA    Gitea: create a commit status
  .../api/v4/projects/ID/statuses/SHA         GitLab: set the pipeline status of a commit
  .../repos/OWNER/REPO/statuses/SHA           GitHub (and GitHub Enterprise's /api/v3): create a commit status
  .../services/TEAM/BOT/SECRET                Slack incoming webhook (Mattermost and Rocket.Chat take the same)
  anything else                               a generic webhook: 201 {"id": n}

A request the service accepts gets its success answer (201 and the new status for the forges,
200 ``ok`` as text for Slack); one it refuses gets the service's status code and error body.
"""

import http.server
import json
import re
import sys
import threading
import time
import urllib.parse

GITEA = re.compile(r"/api/v1/repos/[^/]+/[^/]+/statuses/[^/]+$")
GITLAB = re.compile(r"/api/v4/projects/[^/]+/statuses/[^/]+$")
GITHUB = re.compile(r"/repos/[^/]+/[^/]+/statuses/[^/]+$")
SLACK = re.compile(r"/services/[^/]+/[^/]+/[^/]+$")

GITHUB_STATES = ("error", "failure", "pending", "success")
GITHUB_MEDIA_TYPE = "application/vnd.github+json"
GITHUB_API_VERSIONS = ("2022-11-28",)
GITHUB_DESCRIPTION_MAX = 140
GITLAB_STATES = ("pending", "running", "success", "failed", "canceled")
GITLAB_TARGET_URL_MAX = 255
GITEA_STATES = ("pending", "success", "error", "failure", "warning")


class Refused(Exception):
    """The service's answer to a request it refuses: HTTP status and body (a JSON document or text)."""

    def __init__(self, status, body):
        super().__init__(body if isinstance(body, str) else json.dumps(body))
        self.status, self.body = status, body


def _json_object(raw, refusal):
    try:
        doc = json.loads(raw)
    except ValueError:
        raise refusal from None
    if not isinstance(doc, dict):
        raise refusal
    return doc


def _strings(doc, fields, refusal_for):
    for field in fields:
        if field in doc and doc[field] is not None and not isinstance(doc[field], str):
            raise refusal_for(field)


def check_github(headers, raw):
    """docs.github.com/rest: "Requests with no User-Agent header will be rejected"; the docs ask every
    request to send ``Accept: application/vnd.github+json`` and name its API version in
    ``X-GitHub-Api-Version`` (GitHub answers 400 to one it does not support; this receiver also
    refuses a request without them, which GitHub would serve with its default version); creating a
    status needs a token; ``state`` is one of error, failure, pending, success; ``description``
    is at most 140 characters ("description is too long (maximum is 140 characters)", 422)."""
    if not headers.get("user-agent"):
        raise Refused(403, "Request forbidden by administrative rules. Please make sure your request has a "
                           "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api"
                           "#user-agent-required). Check https://developer.github.com for other possible causes.")
    if headers.get("x-github-api-version") not in GITHUB_API_VERSIONS:
        raise Refused(400, {"message": "Unsupported or missing 'X-GitHub-Api-Version' header %r; supported: %s"
                                       % (headers.get("x-github-api-version"), ", ".join(GITHUB_API_VERSIONS))})
    if headers.get("accept") != GITHUB_MEDIA_TYPE:
        raise Refused(415, {"message": "Unsupported 'Accept' header: %r. Must accept '%s'."
                                       % (headers.get("accept"), GITHUB_MEDIA_TYPE)})
    if not re.match(r"(Bearer|token) \S+$", headers.get("authorization") or ""):
        raise Refused(401, {"message": "Requires authentication"})
    doc = _json_object(raw, Refused(400, {"message": "Problems parsing JSON"}))

    def invalid(field, message=None):
        return Refused(422, {"message": "Validation Failed", "errors": [
            {"resource": "Status", "code": "custom" if message else "invalid", "field": field,
             "message": message or "%s is invalid" % field}]})
    if doc.get("state") not in GITHUB_STATES:
        raise invalid("state", "state is not included in the list")
    _strings(doc, ("description", "context", "target_url"), invalid)
    if len(doc.get("description") or "") > GITHUB_DESCRIPTION_MAX:
        raise invalid("description", "description is too long (maximum is %d characters)" % GITHUB_DESCRIPTION_MAX)
    return 201, {"id": 1, "state": doc["state"], "description": doc.get("description"),
                 "context": doc.get("context") or "default", "target_url": doc.get("target_url")}


def check_gitlab(headers, raw):
    """docs.gitlab.com/api/commits (lib/api/commit_statuses.rb): a token in ``PRIVATE-TOKEN`` or
    ``Authorization: Bearer`` (401 without); ``state`` required, one of pending, running, success,
    failed, canceled (400 "state does not have a valid value"); ``name`` (or ``context``),
    ``description``, ``ref``, ``target_url`` strings; ``target_url`` an http(s) URL of at most 255
    characters (GenericCommitStatus validation)."""
    if not (headers.get("private-token") or re.match(r"Bearer \S+$", headers.get("authorization") or "")):
        raise Refused(401, {"message": "401 Unauthorized"})
    doc = _json_object(raw, Refused(400, {"error": "The provided content-type is not supported or the body is not JSON"}))
    if "state" not in doc:
        raise Refused(400, {"error": "state is missing"})
    if doc["state"] not in GITLAB_STATES:
        raise Refused(400, {"error": "state does not have a valid value"})
    _strings(doc, ("name", "context", "description", "ref", "target_url"),
             lambda field: Refused(400, {"error": "%s is invalid" % field}))
    target_url = doc.get("target_url")
    if target_url is not None and urllib.parse.urlsplit(target_url).scheme not in ("http", "https"):
        raise Refused(400, {"message": {"target_url": ["is blocked: Only allowed schemes are http, https"]}})
    if target_url is not None and len(target_url) > GITLAB_TARGET_URL_MAX:
        raise Refused(400, {"message": {"target_url": ["is too long (maximum is %d characters)" % GITLAB_TARGET_URL_MAX]}})
    return 201, {"id": 1, "status": doc["state"], "name": doc.get("name") or doc.get("context") or "default",
                 "description": doc.get("description"), "target_url": target_url}


def check_gitea(headers, raw):
    """Gitea's API (swagger CreateStatusOption): a token (``Authorization: token ...`` or
    ``Bearer``; 401 without); ``context``, ``description``, ``target_url`` strings; ``state`` one
    of pending, success, error, failure, warning."""
    if not re.match(r"(token|Bearer) \S+$", headers.get("authorization") or ""):
        raise Refused(401, {"message": "token is required"})
    doc = _json_object(raw, Refused(422, {"message": "the body is not a JSON object"}))
    _strings(doc, ("context", "description", "target_url", "state"),
             lambda field: Refused(422, {"message": "[%s]: must be a string" % field}))
    if doc.get("state") not in GITEA_STATES:
        raise Refused(422, {"message": "invalid commit status state %r" % doc.get("state")})
    return 201, {"id": 1, "status": doc["state"], "context": doc.get("context") or "",
                 "description": doc.get("description") or "", "target_url": doc.get("target_url") or ""}


def check_slack(headers, raw):
    """api.slack.com incoming webhooks: a JSON body (or ``payload=`` form) that cannot be understood
    is 400 ``invalid_payload``; a message without ``text`` (or blocks, attachments) is 400
    ``no_text``; success is 200 with the text ``ok``."""
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        raw = (urllib.parse.parse_qs(raw.decode(errors="replace")).get("payload") or [""])[0]
    elif content_type != "application/json":
        raise Refused(400, "invalid_payload")
    doc = _json_object(raw, Refused(400, "invalid_payload"))
    if not (doc.get("text") or doc.get("blocks") or doc.get("attachments")):
        raise Refused(400, "no_text")
    return 200, "ok"


def check_webhook(_headers, _raw):
    return 201, None  # the id is the request's count on its path, set by the handler


SERVICES = ((GITEA, check_gitea), (GITLAB, check_gitlab), (GITHUB, check_github), (SLACK, check_slack))


def answer_for(path, headers, raw):
    """(status, body, refusal) the service that ``path`` names gives this request."""
    route = urllib.parse.urlsplit(path).path
    check = next((check for pattern, check in SERVICES if pattern.search(route)), check_webhook)
    try:
        status, body = check(headers, raw)
        return status, body, None
    except Refused as err:
        return err.status, err.body, str(err)


class Handler(http.server.BaseHTTPRequestHandler):
    counts = {}
    lock = threading.Lock()
    record_file = None

    def do_POST(self):  # noqa: N802 - the name http.server calls
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        first = self.path.strip("/").split("/")
        with self.lock:
            self.counts[self.path] = self.counts.get(self.path, 0) + 1
            seen = self.counts[self.path]
        if first[0] == "hang":
            status, answer, refusal = None, None, None
        elif first[0] == "fail-twice" and seen <= 2:
            status, answer, refusal = 500, {"message": "try again"}, None
        elif first[0] == "status":
            status, answer, refusal = int(first[1]), {"message": "as asked"}, None
        else:
            status, answer, refusal = answer_for(self.path, headers, raw)
            if answer is None:
                answer = {"id": seen}
        with self.lock:
            with open(self.record_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"method": "POST", "path": self.path, "headers": headers, "body": body,
                                         "time": time.time(), "status": status, "refusal": refusal}) + "\n")
        if status is None:
            time.sleep(3600)
            return
        self._answer(status, answer)

    def _answer(self, status, doc):
        if isinstance(doc, str):
            data, content_type = doc.encode(), "text/html"  # what Slack answers, even to errors
        else:
            data, content_type = json.dumps(doc).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # the record file is the log
        pass


def main(record_file):
    Handler.record_file = record_file
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
