"""The figures the docs give a user are measured ones: the artifact's size in getting-started.md
is that of the artifact built from this working tree (within a quarter: it grows with the code)."""

import os
import re

from conftest import REPO, collection_source_copy
from test_artifact import build_artifact


def test_getting_started_gives_the_size_of_the_artifact(tmp_path):
    artifact = build_artifact(collection_source_copy(str(tmp_path / "source")), str(tmp_path / "out"))
    with open(os.path.join(REPO, "docs", "getting-started.md"), encoding="utf-8") as handle:
        documented = int(re.search(r"requirement files \(about (\d+) KB\)", handle.read()).group(1))
    size = os.path.getsize(artifact) / 1000
    assert abs(size - documented) < documented / 4, "the artifact is %d KB, getting-started.md says %d" % (
        size, documented)
