"""The HTML report as a person sees it: rendered by headless Chromium (Debian's chromium package).

tests/install-system-packages.sh installs it when missing; if that fails the test fails with the reason.
The screenshot is kept in the artifacts directory.
"""

import os
import re
import shutil
import subprocess

from ansible_collections.gitops.k8s.plugins.module_utils.report import run_report as report

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHA, OLD = "3f2a9c1d" + "0" * 32, "a1b2c3d4" + "0" * 32
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"}
SECRET = {"apiVersion": "v1", "kind": "Secret", "namespace": "shop", "name": "web-secret"}


def chromium():
    proc = subprocess.run(["sh", os.path.join(TESTS, "install-system-packages.sh")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "tests/install-system-packages.sh failed:\n%s%s" % (proc.stdout, proc.stderr)
    path = shutil.which("chromium")
    assert path, "chromium is not on PATH after tests/install-system-packages.sh"
    return path


def browse(binary, profile, *args):
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=%s" % profile, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def sample_report():
    fetch = {"revision": SHA, "commit": {"message": "Scale web to 3 replicas"}}
    history = {"record": {"history": [
        {"revision": SHA, "result": "Succeeded", "trigger": "pull", "time": 1767225600.0, "rollback": False},
        {"revision": OLD, "result": "Succeeded", "trigger": "push", "time": 1767222000.0, "rollback": False}]}}
    return report.build([
        {"app": "shop", "cluster": "prod", "namespace": "shop", "trigger": "pull", "decision": "drift", "fetch": fetch,
         "diff": {"changed": True, "resources": [
             dict(DEPLOY, action="update", diff="--- live\n+++ git\n@@ -1 +1 @@\n-  replicas: 5\n+  replicas: 3\n"),
             dict(SECRET, action="update", diff="-  API_TOKEN: *** (old value)\n+  API_TOKEN: *** (new value)\n")]},
         "health": {"status": "Healthy"}, "info": history},
        {"app": "guestbook", "cluster": "prod", "namespace": "guestbook", "trigger": "push", "fetch": fetch,
         "apply": {"changed": True, "revision": SHA, "configured": [DEPLOY]},
         "health": {"failed": True, "status": "Degraded",
                    "resources": [{"ref": DEPLOY, "status": "Degraded", "message": "ProgressDeadlineExceeded"}]},
         "error": {"step": "health", "msg": "Deployment shop/web: ProgressDeadlineExceeded"},
         "rollback": {"revision": OLD, "apply": {"changed": True}, "health": {"status": "Healthy"}}, "info": history},
        {"app": "docs", "cluster": "prod", "skipped": "suspended", "suspended": True},
    ], mode="reconcile")


def test_the_report_renders_in_chromium_with_one_row_per_app(tmp_path, artifacts):
    binary = chromium()
    paths = report.write(str(tmp_path / "report"), sample_report())
    url = "file://" + paths["html"]

    dom = browse(binary, str(tmp_path / "profile-dom"), "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    rows = re.findall(r'<tr class="app" data-app="([^"]+)">(.*?)</tr>', dom.stdout, re.S)
    assert [name for name, _cells in rows] == ["docs", "guestbook", "shop"]
    cells = dict(rows)
    assert "OUT OF SYNC" in cells["shop"] and "HEALTHY" in cells["shop"] and "3f2a9c1" in cells["shop"]
    assert "Scale web to 3 replicas" in cells["shop"]
    assert "rolled back" in cells["guestbook"]
    assert "suspended" in cells["docs"]
    assert "Rolled back to <code>a1b2c3d</code>" in dom.stdout
    assert "*** (new value)" in dom.stdout

    shot = os.path.join(artifacts, "report.png")
    if os.path.exists(shot):
        os.remove(shot)
    taken = browse(binary, str(tmp_path / "profile-shot"), "--window-size=1300,1000", "--screenshot=%s" % shot, url)
    assert taken.returncode == 0, taken.stderr
    with open(shot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(shot) > 10000  # a rendered page, not a blank image
