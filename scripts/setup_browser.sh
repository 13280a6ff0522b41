#!/usr/bin/env bash
# Installs what the browser test (tests/test_web_service.py) drives: Debian's Chromium and a Chinese font.
# Idempotent: does nothing when both are already there. Needs root (or sudo) and apt; elsewhere it only
# warns (exit 0) and the browser test skips, saying why.
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
  echo "setup_browser: WARNING: not root and no sudo, Chromium not installed (the browser test will skip)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_browser: WARNING: no apt-get (not Debian/Ubuntu): install Chromium and a CJK font yourself (the browser test will skip)" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# chromium: the browser the test drives headless; fonts-wqy-zenhei: so Chinese renders (not boxes)
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-wqy-zenhei fontconfig >/dev/null
echo "setup_browser: installed $(chromium --version 2>/dev/null | head -1) and $(fc-list :lang=zh family | head -1)"
