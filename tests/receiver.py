"""A real HTTP receiver for notification tests: records every request, answers as told by the path.

    python tests/receiver.py RECORD_FILE      prints the port it listens on (127.0.0.1), then serves

Every POST is appended to RECORD_FILE as one JSON line {method, path, headers (names in lower
case), body, time} before it is answered. The first path segment chooses the answer, so one process serves every test:

  /fail-twice/...   500 for the first two requests to that path, then 200
  /hang/...         never answers (the connection stays open until the client gives up)
  /status/NNN/...   always NNN
  anything else     201 with {"id": 1} (what GitHub, GitLab and Gitea answer to a new commit status)
"""

import http.server
import json
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    counts = {}
    lock = threading.Lock()
    record_file = None

    def do_POST(self):  # noqa: N802 - the name http.server calls
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        with self.lock:
            with open(self.record_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"method": "POST", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                         "body": body, "time": time.time()}) + "\n")
            self.counts[self.path] = self.counts.get(self.path, 0) + 1
            seen = self.counts[self.path]
        first = self.path.strip("/").split("/")
        if first[0] == "hang":
            time.sleep(3600)
            return
        if first[0] == "fail-twice" and seen <= 2:
            return self._answer(500, {"message": "try again"})
        if first[0] == "status":
            return self._answer(int(first[1]), {"message": "as asked"})
        return self._answer(201, {"id": seen})

    def _answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
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
