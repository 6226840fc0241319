"""A forwarding HTTP proxy in front of the real API server that injects faults on request.

Run as its own process by the tests: ``python faultproxy.py KUBECONFIG PORTFILE``. It listens on
127.0.0.1 (plain HTTP), forwards every request to the API server of KUBECONFIG with that
kubeconfig's credentials (as ``kubectl proxy`` does) and streams the answer back. Faults are
armed with ``POST /__faults`` and a JSON list of rules::

    {"method": "PATCH", "status": 503, "times": 3}               answer 503 instead of forwarding
    {"method": "PATCH", "status": 429, "times": 2, "retry_after": 1}
    {"method": "PUT", "reset": true, "after": true, "times": 1}  forward, then drop the connection
    {"method": "GET", "reset": true, "times": 1}                 drop the connection unanswered

``GET /__faults`` returns how many faults each rule injected so far.
"""

import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import urllib3
from kubernetes import client, config

LOCK = threading.Lock()
RULES = []


def upstream(kubeconfig):
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg, persist_config=False)
    pool = urllib3.PoolManager(maxsize=32, cert_reqs="CERT_REQUIRED", ca_certs=cfg.ssl_ca_cert,
                               cert_file=cfg.cert_file, key_file=cfg.key_file)
    token = cfg.get_api_key_with_prefix("authorization")
    return cfg.host.rstrip("/"), pool, token


def take_rule(method):
    with LOCK:
        for rule in RULES:
            if rule.get("method", method) == method and rule.get("injected", 0) < rule.get("times", 1):
                rule["injected"] = rule.get("injected", 0) + 1
                return dict(rule)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    host = pool = token = None

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.connection.close()
        self.close_connection = True

    def _control(self, body):
        global RULES
        if self.command == "POST":
            with LOCK:
                RULES = json.loads(body or b"[]")
        with LOCK:
            out = json.dumps([dict(r, injected=r.get("injected", 0)) for r in RULES]).encode()
        self._answer(200, out, [("Content-Type", "application/json")])

    def _forward(self):
        body = self._body()
        if self.path.startswith("/__faults"):
            return self._control(body)
        rule = take_rule(self.command)
        if rule and rule.get("reset") and not rule.get("after"):
            return self._reset()
        if rule and rule.get("status"):
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": rule["status"],
                      "message": "injected by faultproxy", "reason": "ServiceUnavailable"}
            headers = [("Content-Type", "application/json")]
            if rule.get("retry_after") is not None:
                headers.append(("Retry-After", str(rule["retry_after"])))
            return self._answer(rule["status"], json.dumps(status).encode(), headers)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        if self.token:
            headers["Authorization"] = self.token
        resp = self.pool.request(self.command, self.host + self.path, body=body, headers=headers,
                                 preload_content=False, retries=False, timeout=urllib3.Timeout(connect=10, read=None))
        if rule and rule.get("reset"):  # the server acted on it; the client never hears back
            resp.read()
            resp.release_conn()
            return self._reset()
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in resp.stream(4096):
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            resp.release_conn()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


def main(kubeconfig, portfile):
    Handler.host, Handler.pool, Handler.token = upstream(kubeconfig)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(portfile + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(str(server.server_address[1]))
    os.replace(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
