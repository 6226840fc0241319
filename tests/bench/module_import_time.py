#!/usr/bin/env python
"""Start-up cost of each module: how long importing it takes, and which heavy libraries it loads.

    .venv/bin/python tests/bench/module_import_time.py [--runs 15] [--compare DIR]

Each module is imported in a fresh interpreter, as AnsiballZ runs it
(``ansible_collections.gitops.k8s.plugins.modules.X``, compiled from source: see
collections_root), under ``python -X importtime``. Prints the cumulative import time of the
module (ms, Ansible's own ``module_utils.basic`` included: every module pays it) and the CPU
time of the whole interpreter, each the fastest of the runs (the one least disturbed by other
load on the machine), and the heavy libraries the import pulled in. What the engine imports
later, when a run needs it, is not counted here.

``--compare DIR`` (another checkout, e.g. ``git archive <commit> plugins | tar -x -C DIR``)
measures it too, interleaved run by run with this one so that both see the same machine load.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

HEAVY = ("kubernetes", "urllib3", "yaml", "jmespath", "git", "jinja2", "_jsonnet", "requests")
PACKAGE = "ansible_collections.gitops.k8s.plugins.modules"


def modules():
    folder = os.path.join(REPO, "plugins", "modules")
    return sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py")


def collections_root(checkout):
    """A fresh ANSIBLE_COLLECTIONS_PATH entry holding a copy of ``checkout``'s plugins, no bytecode.

    AnsiballZ ships a module and its module_utils as sources in a zip, so every run compiles
    them; a copy without __pycache__, imported with ``-B``, costs the same.
    """
    root = tempfile.mkdtemp(prefix="gitops-k8s-import-time-")
    shutil.copytree(os.path.join(checkout, "plugins"), os.path.join(root, "ansible_collections", "gitops", "k8s", "plugins"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def measure(root, target):
    """(cumulative ms of importing ``target``, CPU ms of the whole interpreter, top-level packages
    imported) from one fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=root)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run([sys.executable, "-B", "-X", "importtime", "-c", "import " + target], env=env,
                         capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    cumulative, loaded = None, set()
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        fields = [field.strip() for field in line[len("import time:"):].split("|")]
        if not fields[1].isdigit():
            continue  # the header line
        loaded.add(fields[2].split(".")[0])
        if fields[2] == target:
            cumulative = int(fields[1]) / 1000
    return cumulative, cpu, loaded


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compare", metavar="DIR", help="another checkout to measure beside this one")
    args = parser.parse_args()
    roots = [("this checkout", collections_root(REPO))]
    if args.compare:
        roots.insert(0, (args.compare, collections_root(os.path.abspath(args.compare))))
    print("Fastest of %d runs. import: -X importtime cumulative ms of the module; CPU: ms of the whole "
          "interpreter, start-up included." % args.runs)
    print("| module | " + " | ".join("%s: import ms | CPU ms | heavy libraries" % name for name, root in roots) + " |")
    print("|---|" + "---:|---:|---|" * len(roots))
    rows = [("(ansible.module_utils.basic alone)", "ansible.module_utils.basic")]
    rows += [(name, "%s.%s" % (PACKAGE, name)) for name in modules()]
    try:
        print_rows(roots, rows, args.runs)
    finally:
        for name, root in roots:
            shutil.rmtree(root)


def print_rows(roots, rows, runs):
    for label, target in rows:
        samples = [[] for root in roots]
        for run in range(runs):  # interleaved: each run measures every root under the same load
            for number, (name, root) in enumerate(roots):
                samples[number].append(measure(root, target))
        cells = []
        for measured in samples:
            heavy = ", ".join(sorted(measured[-1][2].intersection(HEAVY))) or "none"
            cells.append("%.0f | %.0f | %s" % (min(m[0] for m in measured), min(m[1] for m in measured), heavy))
        print("| %s | %s |" % (label, " | ".join(cells)))


if __name__ == "__main__":
    main()
