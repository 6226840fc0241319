#!/usr/bin/env bash
# ansible-test sanity needs the collection at .../ansible_collections/gitops/k8s: copy the working
# tree (tracked and new files, not ignored ones) there and run it with the project's Python.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/gitops/k8s"
mkdir -p "$dest"
cd "$repo"
git ls-files -co --exclude-standard -z | tar -cf - --null -T - --ignore-failed-read 2>/dev/null | tar -xf - -C "$dest"
cd "$dest"
"$repo/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no --exclude tests/cluster/ "$@"
