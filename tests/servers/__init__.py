"""Real servers for the tests, started as processes on 127.0.0.1 and stopped by their pid.

- ``https_git``: ``git http-backend`` behind a TLS server with basic auth (user + token);
- ``ssh_git``: Debian's sshd run on a free port with a generated host key and one client key;
- ``chart_repo``: a Helm chart repository (``helm repo index``) served over HTTP with basic auth;
- ``oci_registry``: the CNCF distribution registry (built from the Go module proxy), TLS and htpasswd.

``tests/install-system-packages.sh`` installs openssh-server; ``localcluster.registry_binary``
builds the registry. Nothing is faked: a server that cannot start fails the test with its log.
"""

import base64
import datetime
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import time

import localcluster

HERE = os.path.dirname(os.path.abspath(__file__))


class Process:
    """One server process; ``stop`` ends exactly it."""

    def __init__(self, name, argv, log, env=None):
        self.name, self.log = name, log
        with open(log, "ab") as handle:
            self.proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def fail(self, why):
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            tail = handle.read()[-3000:]
        self.stop()
        raise AssertionError("%s %s; its log:\n%s" % (self.name, why, tail))

    def wait_for(self, ready, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail("exited with %s" % self.proc.returncode)
            value = ready()
            if value:
                return value
            time.sleep(0.1)
        self.fail("did not get ready in %ss" % timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def certificates(folder):
    """A CA and a server certificate for 127.0.0.1 and localhost; returns {ca, cert, key} paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    paths = {name: os.path.join(folder, name + ".pem") for name in ("ca", "cert", "key")}
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitops-k8s test servers CA")])

    def builder(subject, public_key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2)))

    ca = (builder(ca_name, ca_key.public_key()).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(paths["ca"], "wb") as handle:
        handle.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert"], "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(paths["key"], 0o600)
    return paths


class HttpServer:
    """tests/servers/http_server.py in its own process: static files or ``git http-backend``."""

    def __init__(self, folder, name, static=None, git=None, tls=None, user=None, password=None):
        os.makedirs(folder, exist_ok=True)
        self.user, self.password, self.tls = user, password, tls
        self.request_log = os.path.join(folder, name + "-requests.jsonl")
        port_file = os.path.join(folder, name + ".port")
        argv = [sys.executable, os.path.join(HERE, "http_server.py"), "--port-file", port_file, "--log", self.request_log]
        argv += ["--static", static] if static else ["--git", git]
        if tls:
            argv += ["--cert", tls["cert"], "--key", tls["key"]]
        if user:
            secret_file = os.path.join(folder, name + ".secret")
            with open(secret_file, "w", encoding="utf-8") as handle:
                handle.write(password)
            os.chmod(secret_file, 0o600)
            argv += ["--user", user, "--password-file", secret_file]
        self.process = Process(name, argv, os.path.join(folder, name + ".log"))
        self.port = int(self.process.wait_for(lambda: os.path.exists(port_file) and open(port_file).read()))
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)

    def requests(self):
        if not os.path.exists(self.request_log):
            return []
        with open(self.request_log, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    def stop(self):
        self.process.stop()


class SshServer:
    """sshd on a free 127.0.0.1 port, with a generated host key and one authorised client key."""

    def __init__(self, folder):
        os.makedirs(folder, exist_ok=True)
        sshd = "/usr/sbin/sshd"
        assert os.path.exists(sshd), "sshd is missing: run tests/install-system-packages.sh (openssh-server)"
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        self.host_key = os.path.join(folder, "host_key")
        self.client_key = os.path.join(folder, "client_key")
        for path in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
        authorized = os.path.join(folder, "authorized_keys")
        with open(self.client_key + ".pub", encoding="utf-8") as src, open(authorized, "w", encoding="utf-8") as dst:
            dst.write("restrict " + src.read())
        os.chmod(authorized, 0o600)
        self.port = free_port()
        self.user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True,
                                                             check=True).stdout.strip()
        config = os.path.join(folder, "sshd_config")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("\n".join([
                "Port %d" % self.port, "ListenAddress 127.0.0.1", "HostKey %s" % self.host_key,
                "PidFile %s" % os.path.join(folder, "sshd.pid"), "AuthorizedKeysFile %s" % authorized,
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                "PermitRootLogin prohibit-password", "AllowUsers %s" % self.user, "LogLevel VERBOSE", "",
            ]))
        self.process = Process("sshd", [sshd, "-D", "-e", "-f", config], os.path.join(folder, "sshd.log"))
        self.process.wait_for(lambda: listening(self.port))
        self.known_hosts = os.path.join(folder, "known_hosts")
        with open(self.host_key + ".pub", encoding="utf-8") as src, open(self.known_hosts, "w", encoding="utf-8") as dst:
            dst.write("[127.0.0.1]:%d %s" % (self.port, " ".join(src.read().split()[:2]) + "\n"))

    def url(self, path):
        return "ssh://%s@127.0.0.1:%d%s" % (self.user, self.port, path)

    def stop(self):
        self.process.stop()


class OciRegistry:
    """The distribution registry over TLS with one htpasswd user."""

    def __init__(self, folder, tls):
        import bcrypt

        os.makedirs(folder, exist_ok=True)
        self.user, self.password = "charts", "oci-" + secrets.token_hex(8)
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        htpasswd = os.path.join(folder, "htpasswd")
        with open(htpasswd, "w", encoding="utf-8") as handle:
            handle.write("%s:%s\n" % (self.user, bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(5)).decode()))
        config = os.path.join(folder, "config.yml")
        with open(config, "w", encoding="utf-8") as handle:
            json.dump({  # JSON is YAML
                "version": 0.1, "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": os.path.join(folder, "data")}},
                "http": {"addr": self.host, "secret": secrets.token_hex(16),
                         "tls": {"certificate": tls["cert"], "key": tls["key"]}},
                "auth": {"htpasswd": {"realm": "tests", "path": htpasswd}},
            }, handle)
        with localcluster.locked():
            binary = localcluster.registry_binary()
        self.process = Process("registry", [binary, "serve", config], os.path.join(folder, "registry.log"))
        self.process.wait_for(lambda: listening(self.port))

    def stop(self):
        self.process.stop()


def basic_auth(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
