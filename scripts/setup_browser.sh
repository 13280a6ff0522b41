#!/usr/bin/env bash
# Installs what the browser test (tests/test_web_service.py) drives: Debian's Chromium and a Chinese font.
# Idempotent: does nothing when both are already there. Needs root (or sudo) and apt-get; without them it
# fails with the reason (exit 1). `make test SKIP_BROWSER=1` does not call it and skips the browser test.
#   bash scripts/setup_browser.sh
set -euo pipefail

have_chromium() { command -v chromium >/dev/null 2>&1; }
have_cjk_font() { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; }

if have_chromium && have_cjk_font; then
  echo "setup_browser: chromium ($(chromium --version 2>/dev/null | head -1)) and a Chinese font are installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "setup_browser: error: cannot install Chromium (not root, no sudo): ask an admin to run 'apt-get install chromium fonts-wqy-zenhei', or opt out with SKIP_BROWSER=1" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_browser: error: no apt-get (not Debian/Ubuntu): install Chromium as 'chromium' on PATH and a Chinese font, or opt out with SKIP_BROWSER=1" >&2
  exit 1
fi

start=$SECONDS
echo "setup_browser: installing Chromium and a Chinese font with apt-get (for the browser test)"
export DEBIAN_FRONTEND=noninteractive
fail() { echo "setup_browser: error: $1 failed (see apt's message above); or opt out with SKIP_BROWSER=1" >&2; exit 1; }
$SUDO apt-get update -qq || fail "apt-get update"
# chromium: the browser the test drives headless; fonts-wqy-zenhei: so Chinese renders (not boxes)
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-wqy-zenhei fontconfig >/dev/null || fail "apt-get install chromium"
echo "setup_browser: installed $(chromium --version 2>/dev/null | head -1) and $(fc-list :lang=zh family | head -1) ($((SECONDS - start))s)"
