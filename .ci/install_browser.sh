#!/usr/bin/env bash
# Install Debian's headless Chromium and chromedriver when missing and we are root.
# Without root the browser test skips (it must run under CI=true, where we are root).
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "browser: chromium/chromedriver missing and not root; the browser test will skip" >&2
  exit 0
fi
echo "browser: installing chromium and chromium-driver from Debian"
apt-get update -qq >/dev/null && \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null || \
  echo "browser: apt install failed; the browser test will report it" >&2
exit 0
