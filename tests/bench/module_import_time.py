#!/usr/bin/env python
"""Start-up cost of each module: how long importing it takes, and which heavy libraries it loads.

    eval "$(tests/cluster/env)"; .venv/bin/python tests/bench/module_import_time.py [--runs 7]

Each module is imported in a fresh interpreter, as AnsiballZ runs it
(``ansible_collections.gitops.k8s.plugins.modules.X`` with this checkout on the path), under
``python -X importtime``. Prints the median cumulative import time of the module (ms, Ansible's
own ``module_utils.basic`` included: every module pays it) and the heavy libraries the import
pulled in. What the engine imports later, when a run needs it, is not counted here.
"""

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cluster"))
import localcluster  # noqa: E402

HEAVY = ("kubernetes", "urllib3", "yaml", "jmespath", "git", "jinja2", "_jsonnet", "requests")
PACKAGE = "ansible_collections.gitops.k8s.plugins.modules"


def modules():
    folder = os.path.join(os.path.dirname(os.path.dirname(HERE)), "plugins", "modules")
    return sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py")


def measure(target):
    """(cumulative µs of ``target``, top-level packages imported) from one fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=localcluster.collections_root())
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", "import " + target], env=env,
                         capture_output=True, text=True, check=True)
    cumulative, loaded = None, set()
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        fields = [field.strip() for field in line[len("import time:"):].split("|")]
        if not fields[1].isdigit():
            continue  # the header line
        loaded.add(fields[2].split(".")[0])
        if fields[2] == target:
            cumulative = int(fields[1])
    return cumulative, loaded


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = [("(ansible.module_utils.basic alone)", "ansible.module_utils.basic")]
    rows += [(name, "%s.%s" % (PACKAGE, name)) for name in modules()]
    print("| module | import ms (median of %d) | heavy libraries loaded |" % args.runs)
    print("|---|---:|---|")
    for label, target in rows:
        times, loaded = [], set()
        for _ in range(args.runs):
            micros, loaded = measure(target)
            times.append(micros / 1000)
        heavy = ", ".join(sorted(loaded.intersection(HEAVY))) or "none"
        print("| %s | %.0f | %s |" % (label, statistics.median(times), heavy))


if __name__ == "__main__":
    main()
