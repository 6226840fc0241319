#!/usr/bin/env bash
# ansible-test sanity needs the collection at .../ansible_collections/gitops/k8s: copy the working
# tree (tracked and new files, not ignored ones) there and run it in a virtualenv of its own
# (.venv-sanity: ansible-test pins its own linters, which must not disturb .venv). Its --venv mode
# would download get-pip from a host outside the package registries, so --requirements is used.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# ansible-test only warns and skips its shellcheck test when shellcheck is missing: fail instead.
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "tests/sanity.sh: shellcheck is not installed, so ansible-test would skip the shellcheck test;" \
       "install it with tests/install-system-packages.sh (or apt-get install shellcheck)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/gitops/k8s"
mkdir -p "$dest"
cd "$repo"
git ls-files -co --exclude-standard -z | tar -cf - --null -T - --ignore-failed-read 2>/dev/null | tar -xf - -C "$dest"
sanity_venv="$repo/.venv-sanity"
if [ ! -x "$sanity_venv/bin/ansible-test" ]; then
  python3 -m venv "$sanity_venv"
  "$sanity_venv/bin/pip" install -q "ansible-core>=2.19,<2.20"
fi
pip_version=$("$sanity_venv/bin/python" -c 'import re, ansible_test._internal.python_requirements as m, inspect; print(re.search(r"pip=.([0-9.]+)", inspect.getsource(m)).group(1))')
mkdir -p ~/.ansible/test/cache
cp "$repo/tests/sanity_get_pip.py" ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"
cd "$dest"
"$sanity_venv/bin/ansible-test" sanity --requirements --python 3.11 --color no --exclude tests/cluster/ "$@" 2>&1 \
  | tee "$work/sanity.log"
# Any other test ansible-test skips for a missing program or Python is only a warning too: a failure here.
if grep -E 'Required program .* not found|Skipping sanity test' "$work/sanity.log" >&2; then
  echo "tests/sanity.sh: ansible-test skipped a sanity test (above); install what it needs" >&2
  exit 1
fi
