# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""Lengths of time as users write them: seconds (``300``, ``"300"``) or ``"2h30m"``, ``"1d"``, ``"90s"``.

The units are Go's ``time.ParseDuration`` ones that Argo CD users write (``h``, ``m``, ``s``) plus
``d``; parts add up in any order, as in Go. Every result is seconds as a float (the vocabulary of
times everywhere in the collection).
"""

from __future__ import annotations

import math
import re

from ..errors import GitOpsError

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")


def seconds(value, what, positive=False):
    """``value`` in seconds; GitOpsError naming ``what`` when it is no duration (or not > 0 when
    ``positive``: a window that lasts no time is a mistake, a bake of 0 is not)."""
    if isinstance(value, bool):  # YAML's yes/no would otherwise read as 1/0 seconds
        total = None
    elif isinstance(value, (int, float)):
        total = float(value)
    else:
        total = _parse(str(value).strip().lower())
    if total is None or not math.isfinite(total) or total < 0 or (positive and total == 0):
        raise GitOpsError("%s: %r is not a%s duration (like 300, \"90s\", \"30m\", \"2h30m\", \"1d\")"
                          % (what, value, " positive" if positive else ""), option=what)
    return total


def _parse(text):
    """Seconds in ``text`` ("300", "2h30m"), or None when it is neither a number nor unit parts."""
    try:
        return float(text)
    except ValueError:
        pass
    if not _WHOLE.fullmatch(text):
        return None
    return float(sum(float(amount) * _UNITS[unit] for amount, unit in _PART.findall(text)))


def describe(total):
    """``total`` seconds as the shortest duration string that says it ("2h30m", "90s" -> "1m30s")."""
    parts, rest = [], round(total)
    for unit, size in _UNITS.items():
        amount, rest = divmod(rest, size)
        if amount:
            parts.append("%d%s" % (amount, unit))
    return "".join(parts) or "0s"
