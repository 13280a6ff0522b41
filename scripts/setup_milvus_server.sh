#!/usr/bin/env bash
# Creates (once) the venv with the real Milvus server used by tests/test_milvus_server.py and the
# benchmark: pip `milvus==2.3.5`, whose `milvus-server` runs Milvus standalone without Docker.
# It lives apart from the project's venv because its pinned dependencies clash with ours.
#   bash scripts/setup_milvus_server.sh            # -> ~/.cache/neural_search/milvus-venv
#   NS_MILVUS_VENV=/path/to/venv bash scripts/setup_milvus_server.sh
set -euo pipefail
VENV=${NS_MILVUS_VENV:-$HOME/.cache/neural_search/milvus-venv}
MILVUS_VERSION=2.3.5
PYTHON=${PYTHON:-python3}

if [ -x "$VENV/bin/milvus-server" ] && "$VENV/bin/python" -c "import milvus, sys; sys.exit(milvus.__version__ != '$MILVUS_VERSION')" 2>/dev/null; then
  echo "setup_milvus_server: milvus $MILVUS_VERSION server already installed in $VENV"
  exit 0
fi
if [ -e "$VENV" ]; then
  if [ ! -f "$VENV/pyvenv.cfg" ]; then
    echo "error: $VENV exists and is not a venv; set NS_MILVUS_VENV to another path" >&2
    exit 2
  fi
  rm -rf "$VENV"  # an incomplete or other-version server venv
fi
start=$SECONDS
echo "setup_milvus_server: installing pip milvus==$MILVUS_VERSION (the Milvus server the tests start) into $VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "milvus==$MILVUS_VERSION"
echo "setup_milvus_server: installed milvus $MILVUS_VERSION server: $VENV/bin/milvus-server ($((SECONDS - start))s)"
