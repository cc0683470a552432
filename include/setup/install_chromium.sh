#!/usr/bin/env sh
# Install Debian's headless-capable Chromium and its WebDriver for the browser (e2e) tests.
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (or sudo).
set -eu
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install_chromium.sh: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium chromium-driver
/usr/bin/chromium --version
