#!/bin/sh
# Install the system Chromium and chromedriver (Debian packages) for the browser tests of the
# web view, only when one of them is missing. Idempotent; never downloads a browser by itself.
# Needs root (or sudo) and apt-get; the tests use /usr/bin/chromium and /usr/bin/chromedriver.
set -eu

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "chromium and chromedriver already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: apt-get not found; install the chromium and chromium-driver packages" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_browser.sh: run as root (or install sudo) to install chromium" >&2
        exit 1
    fi
fi

$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
test -x /usr/bin/chromium
test -x /usr/bin/chromedriver
echo "installed: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
