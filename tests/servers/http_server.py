"""A real HTTP(S) server for the tests, run in its own process: a Helm chart repository (static
files) or a Git server (``git http-backend`` as CGI), behind basic auth.

    python http_server.py --port-file F (--static DIR | --git DIR) [--cert C --key K]
                          [--user U --password-file P] [--log L]

It binds 127.0.0.1 on a free port and writes the port to ``--port-file`` once it listens. Every
request is logged to ``--log`` as one JSON line: method, path, whether an Authorization header
came and whether it was accepted (never the credentials themselves).
"""

import argparse
import base64
import hmac
import http.server
import json
import os
import ssl
import subprocess
import sys


def make_handler(args, password):
    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def __init__(self, *a, **kw):
            super().__init__(*a, directory=args.static or args.git, **kw)

        def log_message(self, fmt, *a):  # the JSON log below is the record
            pass

        def _authorized(self):
            header = self.headers.get("Authorization", "")
            if not args.user:
                return True, bool(header)
            expected = "Basic " + base64.b64encode(("%s:%s" % (args.user, password)).encode()).decode()
            return hmac.compare_digest(header.encode(), expected.encode()), bool(header)

        def _record(self, authorized, sent):
            if args.log:
                with open(args.log, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"method": self.command, "path": self.path, "authorization_sent": sent,
                                             "authorized": authorized}) + "\n")

        def _gate(self):
            authorized, sent = self._authorized()
            self._record(authorized, sent)
            if not authorized:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="tests"')
                self.send_header("Content-Length", "0")
                self.end_headers()
            return authorized

        def do_GET(self):
            if not self._gate():
                return
            if args.git:
                self._git()
            else:
                super().do_GET()

        def do_HEAD(self):
            if self._gate():
                super().do_HEAD()

        def do_POST(self):
            if self._gate() and args.git:
                self._git()

        def _git(self):
            path, _q, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = dict(os.environ, GIT_PROJECT_ROOT=args.git, GIT_HTTP_EXPORT_ALL="1", REQUEST_METHOD=self.command,
                       PATH_INFO=path, QUERY_STRING=query, CONTENT_TYPE=self.headers.get("Content-Type", ""),
                       CONTENT_LENGTH=str(len(body)), REMOTE_USER=args.user or "", REMOTE_ADDR="127.0.0.1",
                       GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False).stdout
            head, _sep, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _c, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--static")
    parser.add_argument("--git")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password-file")
    parser.add_argument("--log")
    args = parser.parse_args()
    password = None
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as handle:
            password = handle.read().strip()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args, password))
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(args.port_file + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
