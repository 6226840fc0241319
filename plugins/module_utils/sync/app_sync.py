# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""One application's way through a per-cluster run, as the phases leave it.

The app's configuration (``app``, normalized ``gitops_apps`` item) and the run's settings never
change. Each phase sets its own fields, in one place of the engine:

  sources   ``source``   (Source: the resolved revision, the checkout, the pulled chart)
  render    ``bundle``
  policy    ``policy``   (policy.Verdict: its project, its identity) and ``client`` (the client of every
            request about its objects: acting as its identity, or the run's own; tenancy.py)
  read      ``record``   (the app's in-cluster record as the run read it)
  decide    ``verdict``  (Verdict: the decision, whether to apply, the diff, the health read)
  converge  ``applied``, ``health``, ``rollback``, ``record_after``, ``moved_meanwhile``,
            ``ansible_diff``

A step that fails sets ``error`` (``step()``); an app whose dependency failed is ``skipped``.
``result()`` turns the fields into the per-app result (app_result.py).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from ..app_result import app_result, skipped_result
from ..errors import GitOpsError
from .tenancy import identity_fields


@dataclass(frozen=True)
class Source:
    """What the sources phase found for an app: ``resolved`` (git_fetch's revision info), the
    read-only ``checkout`` of that commit, the ``chart`` pulled for it and the ``commit``."""

    resolved: dict
    checkout: str | None = None
    chart: dict | None = None
    commit: dict | None = None

    @property
    def revision(self):
        return self.resolved.get("revision")


@dataclass(frozen=True)
class Verdict:
    """What the decide phase concluded (or, under the Lease, what superseded it)."""

    decision: str
    needs_apply: bool = False
    diff: dict = field(default_factory=dict)
    health: dict = field(default_factory=dict)  # a reading of the snapshot when nothing is applied
    ansible_diff: list = field(default_factory=list)
    note: str = ""  # why an app with a new commit was left alone
    gate: object = None  # gates.Gate: what the windows and promotion gates said of the change

    @property
    def refused(self):
        return self.gate is not None and self.gate.verdict == "refuse"


DETAIL_KEYS = ("rejected", "failed", "object", "file")


class AppSync:
    def __init__(self, app, settings):
        self.app, self.name, self.settings = app, app["name"], settings
        self.started = time.monotonic()
        self.source = self.bundle = self.record = self.verdict = None
        self.policy = self.client = None
        self.applied, self.health, self.rollback = {}, {}, {}
        self.record_after = self.moved_meanwhile = None
        self.ansible_diff = []
        self.error, self.skipped = {}, None

    @property
    def failed(self):
        return bool(self.error) or bool(self.skipped)

    @property
    def revision(self):
        return self.source.revision

    @property
    def identity(self):
        """The user the app's requests act as (None: the run's own)."""
        return self.policy.identity if self.policy else None

    def fail(self, step, err):
        self.error = {"step": step, "msg": str(err)}
        if isinstance(err, GitOpsError):
            self.error["details"] = {k: v for k, v in err.details.items() if k in DETAIL_KEYS}

    @contextlib.contextmanager
    def step(self, name):
        """The body is step ``name`` of this app: a GitOpsError in it becomes the app's error."""
        try:
            yield
        except GitOpsError as err:
            self.fail(name, err)

    def fetch_info(self):
        """git_fetch's view of the app: what it resolved, and whether the cluster ran another revision."""
        if self.source is None:
            return {}
        recorded = (self.record or {}).get("revision")
        # another run moved the app between our read and our Lease: the revision it found is the previous
        previous = self.moved_meanwhile.get("revision") if self.moved_meanwhile is not None else recorded
        return dict(self.source.resolved, commit=self.source.commit, path=self.source.checkout,
                    changed=bool(self.source.resolved) and self.revision != recorded, previous_revision=previous)

    def result(self):
        settings = self.settings
        if self.skipped:
            return skipped_result(self.name, settings.cluster_name, self.app.get("namespace"), settings.trigger,
                                  self.skipped)
        verdict = self.verdict or Verdict("")
        info = dict(self.record_after or self.record or {})
        info.pop("objects", None)
        return app_result(
            self.name, settings.cluster_name, self.app.get("namespace"), settings.trigger,
            decision=verdict.decision, check_mode=settings.check, error=self.error,
            duration=round(time.monotonic() - self.started, 3), fetch=self.fetch_info(),
            info={"record": info or None}, diff=verdict.diff, apply=self.applied,
            health=self.health or verdict.health, rollback=self.rollback, note=verdict.note,
            **gate_fields(verdict.gate), **identity_fields(self.identity, self.policy and self.policy.project))

    def shown_diff(self):
        """The app's Ansible diff (what it changed, else what it would), each object saying as whom."""
        entries = self.ansible_diff or (self.verdict.ansible_diff if self.verdict else [])
        account = identity_fields(self.identity, None)["service_account"]
        if not account:
            return entries
        return [dict(d, after_header="%s as %s" % (d.get("after_header") or "", account)) for d in entries]


def gate_fields(gate):
    """The result's ``held`` ({by, reason, until}) of a change the gates held, and ``override``
    (the reason that let a push through a window)."""
    if gate is None or gate.verdict == "go":
        return {"override": gate.override} if gate is not None and gate.override else {}
    return {"held": gate.as_dict()}
