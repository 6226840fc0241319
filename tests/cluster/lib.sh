# Sourced by up/down/env: make sure the project's virtualenv exists, then run localcluster.py.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv="$repo/.venv"
if [ ! -x "$venv/bin/python" ] || [ "$repo/requirements-dev.txt" -nt "$venv/.installed" ] || [ "$repo/requirements.txt" -nt "$venv/.installed" ]; then
  echo "[cluster] creating the virtualenv $venv (requirements-dev.txt)..." >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q -r "$repo/requirements-dev.txt" >&2
  touch "$venv/.installed"
fi
localcluster() { exec "$venv/bin/python" "$here/localcluster.py" "$@"; }
