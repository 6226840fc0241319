# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Cluster access shared by every cluster-facing module.

The kubernetes client is used for what it does well (reading kubeconfig, exec/auth plugins, TLS
setup); requests themselves go through its urllib3 pool directly so that we control content
types (server-side apply), streaming (watches), timeouts and can count requests.

Discovery uses the aggregated discovery endpoints: two requests describe every resource of the
cluster. It is cached for the life of the Cluster object and refreshed when a kind is not
found (a CRD applied earlier in the same run), with a bounded wait when an Established CRD
defines the kind (discovery lags Establishment).

``Cluster.as_identity(user)`` derives a client that acts as another user (Kubernetes
impersonation: an application's ServiceAccount). It shares the run's connection pool, request
counts and discovery, and discovery stays with the run's own identity.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import threading
import time
from collections import namedtuple
from urllib.parse import quote, urlencode

from ..deps import import_library
from ..errors import GitOpsError
from ..refs import describe

# Option name -> environment variable AWX's Kubernetes credential (or a user) sets.
ENV_FALLBACKS = {
    "kubeconfig": "K8S_AUTH_KUBECONFIG",
    "context": "K8S_AUTH_CONTEXT",
    "host": "K8S_AUTH_HOST",
    "api_key": "K8S_AUTH_API_KEY",
    "ca_cert": "K8S_AUTH_SSL_CA_CERT",
    "client_cert": "K8S_AUTH_CERT_FILE",
    "client_key": "K8S_AUTH_KEY_FILE",
    "validate_certs": "K8S_AUTH_VERIFY_SSL",
}

# Retries of one request (429, 5xx, connection failures; see ``retryable``): at most RETRIES
# more attempts, sleeping ``backoff`` between them -- about 25 s in all, enough for an API server
# restart, bounded so that a dead cluster still fails the run.
RETRIES = 6
BACKOFF_BASE, BACKOFF_CAP, RETRY_AFTER_CAP = 0.25, 8.0, 30.0
# Methods whose repetition does what doing them once does: a read, a replace carrying its
# resourceVersion, a server-side apply, a delete (a second one finds the object gone). A POST
# create is not: repeating it after the server acted creates twice (generateName) or fails.
IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "PATCH", "DELETE"))
# Up to this many objects of one kind in one namespace are read one GET each (see Cluster.read).
READ_BY_NAME = 4


def retryable(method, status, sent):
    """True when a request that failed with ``status`` (None: no answer) may be sent again.

    ``sent`` is False when the connection failed before the request left (nothing happened).
    """
    if status == 429:  # throttled: the server did not act on it
        return True
    if status is None:
        return not sent or method in IDEMPOTENT
    return status in (500, 502, 503, 504) and method in IDEMPOTENT


def backoff(attempt, retry_after=None):
    """Seconds to sleep before retry number ``attempt`` (0-based): the server's Retry-After when
    given (capped), else exponential with full jitter so that many clients do not retry in step."""
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), RETRY_AFTER_CAP)
        except ValueError:
            pass
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


# Longest wait for discovery to publish the kind of a CRD that is already Established.
DISCOVERY_LAG = 15.0

DISCOVERY_ACCEPT = ",".join(
    [
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
        "application/json",
    ]
)


# How the API server words an authorization denial (apiserver responsewriters.forbiddenMessage),
# whichever authorizer denied; other 403s (admission: quota, PodSecurity...) are worded otherwise.
DENIAL = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]*)" '
                    r'in API group "(?P<group>[^"]*)" '
                    r'(?:in the namespace "(?P<namespace>[^"]*)"|at the cluster scope)(?:: (?P<why>.*))?')


class ApiError(GitOpsError):
    """The API server refused a request; ``status`` is the HTTP code, ``message`` the server's words.

    ``denied`` is set when authorization refused it: {user, verb, group, resource, namespace, name,
    why} as the server checked them and ``identity`` (who lacked the right, in words); the message
    then says who may not do what, where.
    """

    def __init__(self, status, reason, message, what="", causes=None, denied=None):
        self.status = status
        self.reason = reason
        self.server_message = message
        self.causes = causes or []  # the Status details' causes: [{field, message, reason}]
        self.denied = denied
        # what was refused and why, without the object it was about (for a list that names it already)
        self.said = "%s (%s %s)" % (denial_text(denied) if denied else message, status, reason)
        super().__init__("%s: %s" % (what, self.said) if what else self.said, status=status, reason=reason,
                         server_message=message, denied=denied)


def denial_text(denied):
    """``<who> may not <verb> <resource> "<name>" in namespace <ns>``: what a 403 of authorization means."""
    resource = "%s.%s" % (denied["resource"], denied["group"]) if denied["group"] else denied["resource"]
    name = ' "%s"' % denied["name"] if denied.get("name") else ""
    where = "in namespace %s" % denied["namespace"] if denied["namespace"] else "at cluster scope"
    text = "%s may not %s %s%s %s" % (denied["identity"], denied["verb"], resource, name, where)
    return text + (": " + denied["why"] if denied.get("why") else "")


def denial(message, name, identity):
    """The ``denied`` of an ApiError from the server's 403 ``message`` (None: not authorization's);
    ``identity`` is the user the client impersonates (None: the run's own)."""
    found = DENIAL.search(message or "")
    if not found:
        return None
    denied = found.groupdict()
    denied["namespace"], denied["name"] = denied["namespace"] or "", name or ""
    if identity and denied["verb"] != "impersonate":
        denied["identity"] = identity
    else:  # the run's own identity lacked it (impersonating someone is one of its rights)
        denied["identity"] = "the run's own identity (user %s)" % denied["user"]
    return denied


class Resource(namedtuple("Resource", "group version kind plural namespaced verbs")):
    """One served resource type as discovery describes it."""

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    def path(self, namespace=None, name=None, subresource=None):
        base = "/apis/%s/%s" % (self.group, self.version) if self.group else "/api/%s" % self.version
        if self.namespaced and namespace:
            base += "/namespaces/%s" % quote(namespace, safe="")
        base += "/" + self.plural
        if name:
            base += "/" + quote(name, safe="")
        if subresource:
            base += "/" + subresource
        return base


def _truthy(value):
    if isinstance(value, bool) or value is None:
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def resolve_params(params):
    """Fill unset cluster options from the K8S_AUTH_* environment."""
    resolved = dict(params or {})
    for option, env in ENV_FALLBACKS.items():
        if resolved.get(option) in (None, "") and os.environ.get(env):
            resolved[option] = os.environ[env]
    resolved["validate_certs"] = _truthy(resolved.get("validate_certs"))
    return resolved


def _configuration(params):
    # imported late: only cluster-facing code needs it, and it is slow to import
    kubernetes = import_library("kubernetes", "kubernetes", "talking to a Kubernetes cluster")

    cfg = kubernetes.client.Configuration()
    if params.get("host"):
        cfg.host = params["host"]
        if params.get("api_key"):
            cfg.api_key = {"authorization": params["api_key"]}
            cfg.api_key_prefix = {"authorization": "Bearer"}
        if params.get("ca_cert"):
            cfg.ssl_ca_cert = params["ca_cert"]
        if params.get("client_cert"):
            cfg.cert_file = params["client_cert"]
        if params.get("client_key"):
            cfg.key_file = params["client_key"]
    else:
        try:
            kubernetes.config.load_kube_config(
                config_file=params.get("kubeconfig"), context=params.get("context"),
                client_configuration=cfg, persist_config=False,
            )
        except Exception as err:  # the loader raises many types; all mean "cannot use this kubeconfig"
            where = params.get("kubeconfig") or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise GitOpsError("cannot load kubeconfig %s: %s" % (where, err), kubeconfig=where)
    if params.get("validate_certs") is not None:
        cfg.verify_ssl = params["validate_certs"]
    return cfg


class Cluster:
    """A connection to one cluster: raw requests, discovery and the few verbs the engine needs."""

    def __init__(self, configuration, request_timeout=60, pool_size=16):
        from kubernetes.client import rest

        configuration.connection_pool_maxsize = pool_size
        self._cfg = configuration
        self._pool = rest.RESTClientObject(configuration).pool_manager
        self.host = configuration.host.rstrip("/")
        self.request_timeout = request_timeout
        self.identity = None  # the user this client impersonates (see as_identity); None: the run's own
        self._tally = {"requests": 0, "retries": 0}  # shared with the identities derived from this client
        self._lock = threading.Lock()
        self._run = self  # the client of the run's own identity: discovery and its cache
        self._resources = None

    @classmethod
    def from_params(cls, params, pool_size=16):
        """Build from module options (see option_specs.CLUSTER_ARGSPEC), with K8S_AUTH_* fallbacks."""
        params = resolve_params(params)
        return cls(_configuration(params), request_timeout=params.get("request_timeout") or 60, pool_size=pool_size)

    def as_identity(self, user):
        """A client acting as ``user`` (an application's ServiceAccount: ``system:serviceaccount:<ns>:<name>``).

        Each request it sends carries ``Impersonate-User: <user>`` and no ``Impersonate-Group``, as
        ``kubectl --as`` does: the server then gives a ServiceAccount its groups itself
        (system:serviceaccounts, system:serviceaccounts:<ns>, system:authenticated), and the run's
        identity needs the verb ``impersonate`` on that ServiceAccount only, not on groups.
        It shares this client's connection pool and lock, and its requests count in
        ``requests_made`` / ``retries_made`` of both (a run's totals). Discovery, and the CRD read
        that waits for it, are done as the run's own identity, into the run's cache: what kinds a
        cluster serves is no tenant's business, and a tenant may not read CRDs.
        """
        if not isinstance(user, str) or not user.strip():
            raise GitOpsError("an identity to act as is a user name, such as system:serviceaccount:<ns>:<name>; "
                              "not %r" % (user,))
        derived = copy.copy(self)
        derived.identity = user.strip()
        return derived

    @property
    def requests_made(self):
        """Requests sent by the run's client and every identity derived from it (the run's total)."""
        return self._tally["requests"]

    @property
    def retries_made(self):
        return self._tally["retries"]

    # -- raw requests -------------------------------------------------------------------

    def _headers(self, content_type, accept):
        headers = {"Accept": accept, "User-Agent": "gitops.k8s"}
        if content_type:
            headers["Content-Type"] = content_type
        token = self._cfg.get_api_key_with_prefix("authorization")  # also refreshes exec tokens
        if token:
            headers["Authorization"] = token
        if self.identity:
            headers["Impersonate-User"] = self.identity
        return headers

    def request(self, method, path, body=None, query=None, content_type="application/json",
                accept="application/json", timeout=None, stream=False, what="", retry=True):
        """Send one request; return the decoded JSON body (or the raw response when ``stream``).

        Throttling, server errors and connection failures are retried (see ``retryable``) unless
        ``retry`` is False (a caller with its own deadline, such as the lease's renewal).
        """
        import urllib3

        url = self.host + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        if stream:
            timeout = urllib3.Timeout(connect=10, read=timeout)
        else:
            timeout = timeout or self.request_timeout
        attempt = 0
        while True:
            with self._lock:
                self._tally["requests"] += 1
            try:
                resp = self._pool.request(
                    method, url, body=data, headers=self._headers(content_type if data is not None else None, accept),
                    timeout=timeout, preload_content=not stream, retries=False,
                )
            except urllib3.exceptions.HTTPError as err:
                sent = not isinstance(err, (urllib3.exceptions.NewConnectionError,
                                            urllib3.exceptions.ConnectTimeoutError))
                if retry and attempt < RETRIES and retryable(method, None, sent):
                    attempt = self._pause(attempt)
                    continue
                raise GitOpsError("cannot reach the Kubernetes API at %s: %s%s"
                                  % (self.host, err, " (after %d attempts)" % (attempt + 1) if attempt else ""),
                                  host=self.host, unreachable=True)
            if resp.status < 400:
                break
            if stream:  # read it all (the connection goes back to the pool), kept for the error's message
                resp.read(cache_content=True)
            if retry and attempt < RETRIES and retryable(method, resp.status, True):
                attempt = self._pause(attempt, resp.headers.get("Retry-After"))
                continue
            raise self._error(resp, what)
        if stream:
            return resp
        return json.loads(resp.data) if resp.data else {}

    def _pause(self, attempt, retry_after=None):
        with self._lock:
            self._tally["retries"] += 1
        time.sleep(backoff(attempt, retry_after))
        return attempt + 1

    def _error(self, resp, what):
        details, denied = {}, None
        try:
            status = json.loads(resp.data)
            message, reason = status.get("message", ""), status.get("reason", "")
            details = status.get("details") or {}
        except ValueError:
            message, reason = resp.data.decode("utf-8", "replace").strip(), ""
        if resp.status == 403:
            denied = denial(message, details.get("name"), self.identity)
        return ApiError(resp.status, reason or resp.reason, message, what=what, causes=details.get("causes"),
                        denied=denied)

    # -- discovery ----------------------------------------------------------------------

    def _discover(self):
        resources = {}
        for root in ("/api", "/apis"):
            doc = self.request("GET", root, accept=DISCOVERY_ACCEPT, what="discovery")
            if doc.get("kind") == "APIGroupDiscoveryList":
                for group in doc.get("items", []):
                    name = group.get("metadata", {}).get("name", "")
                    for version in group.get("versions", []):
                        for res in version.get("resources", []):
                            kind = (res.get("responseKind") or {}).get("kind")
                            if not kind:
                                continue
                            entry = Resource(
                                name, version["version"], kind, res["resource"],
                                res.get("scope") == "Namespaced", tuple(res.get("verbs", [])),
                            )
                            resources[(name, version["version"], kind)] = entry
            else:
                self._discover_legacy(root, doc, resources)
        return resources

    def _discover_legacy(self, root, doc, resources):
        """Servers older than 1.26 lack aggregated discovery: walk each group version."""
        if root == "/api":
            versions = [("", v) for v in doc.get("versions", [])]
        else:
            versions = []
            for group in doc.get("groups", []):
                versions += [(group["name"], v["version"]) for v in group.get("versions", [])]
        for group, version in versions:
            path = "/apis/%s/%s" % (group, version) if group else "/api/%s" % version
            for res in self.request("GET", path, what="discovery").get("resources", []):
                if "/" in res["name"]:
                    continue  # subresource
                entry = Resource(group, version, res["kind"], res["name"], res["namespaced"], tuple(res.get("verbs", [])))
                resources[(group, version, res["kind"])] = entry

    def resource(self, api_version, kind):
        """The Resource serving ``kind`` at ``api_version``; GitOpsError when the cluster has none.

        A miss refreshes discovery. The API server publishes a CRD's kind in discovery a moment
        after the CRD reports Established, so when an Established CRD defines the kind, discovery
        is read again with back-off (at most DISCOVERY_LAG seconds) instead of failing at once.
        """
        if self._run is not self:
            return self._run.resource(api_version, kind)
        group, _slash, version = api_version.rpartition("/")
        if self._resources is None:
            self._resources = self._discover()
        found = self._resources.get((group, version, kind))
        if found is None:
            self._resources = self._discover()
            found = self._resources.get((group, version, kind))
        if found is None and group and self._established_crd_serves(group, version, kind):
            deadline, pause = time.monotonic() + DISCOVERY_LAG, 0.1
            while found is None and time.monotonic() < deadline:
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                self._resources = self._discover()
                found = self._resources.get((group, version, kind))
        if found is None:
            raise GitOpsError(
                "the cluster does not serve %s %s (no such kind; is its CRD installed?)" % (api_version, kind),
                apiVersion=api_version, kind=kind,
            )
        return found

    def _established_crd_serves(self, group, version, kind):
        """True when an Established CustomResourceDefinition serves ``kind`` at group/version."""
        try:
            crds = self.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                what="list customresourcedefinitions").get("items", [])
        except ApiError:
            return False  # not allowed to read CRDs: nothing to wait for
        for crd in crds:
            spec = crd.get("spec") or {}
            if spec.get("group") != group or (spec.get("names") or {}).get("kind") != kind:
                continue
            served = any(v.get("name") == version and v.get("served") for v in spec.get("versions") or ())
            established = any(c.get("type") == "Established" and c.get("status") == "True"
                              for c in (crd.get("status") or {}).get("conditions") or ())
            return served and established
        return False

    def forget_discovery(self):
        self._run._resources = None

    # -- verbs --------------------------------------------------------------------------

    def _res(self, ref):
        return self.resource(ref["apiVersion"], ref["kind"])

    def get(self, ref):
        """The live object, or None when it does not exist."""
        res = self._res(ref)
        try:
            return self.request("GET", res.path(ref.get("namespace"), ref["name"]), what=describe(ref))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def list(self, resource, namespace=None, label_selector=None, field_selector=None):
        """Every object of a resource (one namespace or all): (items, collection resourceVersion)."""
        items, query = [], {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": 500}
        while True:
            doc = self.request("GET", resource.path(namespace), query=query, what="list %s" % resource.plural)
            for item in doc.get("items", []):
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            token = doc.get("metadata", {}).get("continue")
            if not token:
                return items, doc.get("metadata", {}).get("resourceVersion")
            query["continue"] = token

    def read(self, resource, namespace=None, names=None):
        """The live objects of ``resource`` in ``namespace`` (None: all, or cluster-scoped): those
        of ``names`` one GET each when there are at most READ_BY_NAME of them, else every object
        (one LIST). An app of a few objects in a namespace shared with thousands must not LIST
        them all: a fleet's first sync was quadratic in its size."""
        if names is not None and len(names) <= READ_BY_NAME:
            found = []
            for name in names:
                try:
                    obj = self.request("GET", resource.path(namespace, name),
                                       what=describe({"kind": resource.kind, "namespace": namespace, "name": name}))
                except ApiError as err:
                    if err.status != 404:
                        raise
                    continue
                found.append(obj)
            return found
        return self.list(resource, namespace=namespace)[0]

    @staticmethod
    def close_stream(resp):
        """End a watch stream from another thread: its reader stops at once (instead of holding a
        connection to the server until the watch times out). urllib3 before 2.3 cannot: the stream
        then ends with its timeout."""
        shutdown = getattr(resp, "shutdown", None)
        if shutdown:
            try:
                shutdown()
            except (ValueError, OSError):
                pass  # its connection is closed already (urllib3: "self._sock_shutdown is not set")

    def apply(self, obj, field_manager, force=True, dry_run=False):
        """Server-side apply of one object; returns what the server stored (or would store)."""
        meta = obj.get("metadata", {})
        ref = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "namespace": meta.get("namespace"), "name": meta["name"]}
        res = self._res(ref)
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request(
            "PATCH", res.path(ref["namespace"], ref["name"]), body=obj, query=query,
            content_type="application/apply-patch+yaml", what=describe(ref),
        )

    def create(self, obj, field_manager, dry_run=False):
        """Create (used for objects with generateName, which cannot be applied)."""
        meta = obj.get("metadata", {})
        res = self.resource(obj["apiVersion"], obj["kind"])
        query = {"fieldManager": field_manager}
        if dry_run:
            query["dryRun"] = "All"
        return self.request(
            "POST", res.path(meta.get("namespace")), body=obj, query=query,
            what="%s %s" % (obj["kind"], meta.get("name") or meta.get("generateName")),
        )

    def replace(self, obj, field_manager, dry_run=False):
        """Replace (PUT) an existing object with ``obj``: fields other managers set are dropped."""
        meta = obj.get("metadata", {})
        ref = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "namespace": meta.get("namespace"), "name": meta["name"]}
        query = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return self.request("PUT", self._res(ref).path(ref["namespace"], ref["name"]), body=obj, query=query,
                            what=describe(ref))

    def json_patch(self, ref, patch, field_manager):
        """Apply a JSON patch (RFC 6902) to one object; returns what the server stored."""
        return self.request("PATCH", self._res(ref).path(ref.get("namespace"), ref["name"]), body=patch,
                            query={"fieldManager": field_manager}, content_type="application/json-patch+json",
                            what=describe(ref))

    def served_resource(self, group, kind):
        """A Resource serving ``kind`` of ``group`` at any version, or None (discovery as cached)."""
        if self._run is not self:
            return self._run.served_resource(group, kind)
        if self._resources is None:
            self._resources = self._discover()
        return next((r for (g, _v, k), r in self._resources.items() if (g, k) == (group, kind)), None)

    def delete(self, ref, propagation="Background", dry_run=False, uid=None):
        """Delete; returns False when it was already gone. With ``uid``, only the object of that uid
        (the server answers 409 when the name now belongs to another object)."""
        res = self._res(ref)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        if dry_run:  # in the body: the server ignores query parameters of a DELETE that has one
            body["dryRun"] = ["All"]
        try:
            self.request("DELETE", res.path(ref.get("namespace"), ref["name"]), body=body, what=describe(ref))
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    def watch(self, resource, namespace=None, resource_version=None, timeout_seconds=60, label_selector=None,
              field_selector=None, opened=None):
        """Yield watch events (dicts with ``type`` and ``object``) until the server ends the stream.

        An expired resourceVersion arrives as an ERROR event with code 410; callers re-list.
        ``opened(response)`` gets the stream's response as it opens (see ``close_stream``), and
        ``opened(None)`` before its connection goes back to the pool (from then on it is another's).
        """
        query = {
            "watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
            "timeoutSeconds": int(timeout_seconds), "labelSelector": label_selector, "fieldSelector": field_selector,
        }
        resp = self.request("GET", resource.path(namespace), query=query, stream=True, timeout=timeout_seconds + 10,
                            what="watch %s" % resource.plural)
        if opened:
            opened(resp)
        try:
            buf = b""
            for chunk in resp.stream(4096, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            if opened:
                opened(None)
            resp.release_conn()
