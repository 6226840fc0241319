#!/bin/sh
# Debian packages the tests need: chromium (tests/integration/test_report_browser.py renders the
# HTML report headless), shellcheck (tests/sanity.sh fails without it rather than let ansible-test skip its test) and
# openssh-server (tests/servers.py runs a user-level sshd as the Git server over SSH).
# Idempotent: installs only what is missing.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium fonts-dejavu-core"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
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
ls /usr/sbin/sshd
