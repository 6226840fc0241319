"""Count API requests of any client from the local cluster's audit log, for benchmarks.

The local API server writes one JSON line per request stage (metadata only) to
``localcluster.AUDIT_LOG``, rotated beside it (audit-<time>.log). A request is one auditID: a watch
logs when its response starts and when it ends, a plain request once. Clients are told apart by
their user agent: ``gitops.k8s`` is ours, ``kubectl/...`` kubectl's, kubernetes.core sends what
the Python ``kubernetes`` client sends (``OpenAPI-Generator/...`` unless configured), and the
control plane's own components name themselves (``kube-controller-manager/...``, ``kwok/...``):
``by_client`` shows them all.

    started = time.time()
    ...                                   # the work being measured
    audit.flush()                         # the server logs a request just after answering it
    audit.count(since=started, user_agent="kubectl/")
    audit.by_client(since=started)        # Counter({'gitops.k8s': 1012, 'kubectl': 1003, ...})
"""

import collections
import datetime
import glob
import json
import os
import sys
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster"))
import localcluster  # noqa: E402


def _files(log):
    if not os.path.exists(log):
        raise FileNotFoundError("no audit log at %s: the local cluster was started without one (by an older "
                                "tests/cluster/localcluster.py); restart it: %s=1 tests/cluster/up"
                                % (log, localcluster.RESTART_ENV))
    stem, ext = os.path.splitext(log)
    return sorted(glob.glob(glob.escape(stem) + "-*" + ext)) + [log]  # rotated ones first


def _epoch(timestamp):
    return datetime.datetime.fromisoformat(timestamp).timestamp()


def requests(since=None, until=None, user_agent=None, log=localcluster.AUDIT_LOG):
    """The requests received in [since, until) (epoch seconds), each as its last logged audit event,
    in the order they were received; ``user_agent``: only those whose user agent starts with it."""
    found = {}
    quick = '"userAgent":"%s' % user_agent if user_agent else ""  # skips most lines unparsed
    for path in _files(log):
        if since is not None and os.path.getmtime(path) < since:
            continue  # a rotated file, closed before the window
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break  # being written
                if quick not in line:
                    continue
                event = json.loads(line)
                if user_agent is not None and not event.get("userAgent", "").startswith(user_agent):
                    continue
                received = _epoch(event["requestReceivedTimestamp"])
                if (since is None or received >= since) and (until is None or received < until):
                    event["received"] = received
                    found[event["auditID"]] = event
    return sorted(found.values(), key=lambda event: event["received"])


def count(since=None, until=None, user_agent=None, log=localcluster.AUDIT_LOG):
    """How many requests were received in [since, until) (from a user agent starting with ``user_agent``)."""
    return len(requests(since, until, user_agent, log))


def by_client(since=None, until=None, log=localcluster.AUDIT_LOG):
    """Counter: client (the user agent's product name, before the first '/') -> requests in [since, until)."""
    return collections.Counter(event.get("userAgent", "").split("/", 1)[0]
                               for event in requests(since, until, None, log))


def flush(timeout=60, log=localcluster.AUDIT_LOG):
    """Make one request of our own and wait until the log holds it.

    The server logs a request just after it sends the response, so a client that has its answers
    may be a moment ahead of the log; requests answered before this one are logged by then.
    """
    marker = "gitops-k8s-audit-flush-%s" % uuid.uuid4().hex
    offset = os.path.getsize(_files(log)[-1])
    port = localcluster._read_state()["ports"]["apiserver"]
    request = urllib.request.Request("https://127.0.0.1:%d/version" % port, headers={"User-Agent": marker})
    with urllib.request.urlopen(request, context=localcluster._ssl_context(), timeout=30) as resp:
        resp.read()

    def logged():
        with open(log, "rb") as handle:
            if os.fstat(handle.fileno()).st_size >= offset:  # else rotated meanwhile: read it all
                handle.seek(offset)
            return marker.encode() in handle.read()

    localcluster.wait_for("the audit log to record the request %s" % marker, logged, timeout, interval=0.05)
