#!/bin/sh
# Debian packages the tests need: chromium (tests/integration/test_report_browser.py renders the
# HTML report headless) and shellcheck (ansible-test sanity skips its shellcheck test without it).
# Idempotent: installs only what is missing.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium fonts-dejavu-core"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
[ -z "$missing" ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # the package list is meant to split into words
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
command -v chromium shellcheck
