#!/usr/bin/env bash
# Creates the project venv (.venv) and installs requirements.txt into it; quick and silent when that is
# already done. A stamp file in the venv holds a hash of requirements.txt and pyproject.toml, so pip runs
# again when either changes. Works with or without another venv active (it never uses the active one).
#   bash scripts/setup_venv.sh                  # or: make venv
#   PYTHON3=python3.11 bash scripts/setup_venv.sh   # the interpreter to create the venv with
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PYTHON3=${PYTHON3:-python3}
STAMP=$VENV/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
start=$SECONDS
if [ ! -x "$VENV/bin/python" ]; then
  if ! command -v "$PYTHON3" >/dev/null 2>&1; then
    echo "setup_venv: error: no $PYTHON3 on PATH: install Python 3.11 (e.g. apt-get install python3 python3-venv) or set PYTHON3" >&2
    exit 1
  fi
  # the pins in requirements.txt (numpy 2.4, paddlepaddle 3.3.1) need Python 3.11 or later
  if ! "$PYTHON3" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup_venv: error: $PYTHON3 is Python $("$PYTHON3" -c 'import platform; print(platform.python_version())'), need 3.11+: set PYTHON3=python3.11" >&2
    exit 1
  fi
  echo "setup_venv: creating $VENV with $("$PYTHON3" --version 2>&1)"
  "$PYTHON3" -m venv "$VENV" || { echo "setup_venv: error: '$PYTHON3 -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
echo "setup_venv: installing requirements.txt into $VENV (paddlepaddle, paddlenlp, pymilvus, ...: a few minutes the first time)"
# the filter: setuptools' notice, on every editable install (-e . in requirements.txt), that a folder named like
# a package shadows it: here those folders are the packages
PYTHONWARNINGS="ignore:Editable installation" "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
echo "$want" >"$STAMP"
echo "setup_venv: $VENV ready ($((SECONDS - start))s)"
