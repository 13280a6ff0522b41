#!/usr/bin/env bash
# Creates (once) a venv like the project's but with milvus-lite 3.2.2, the pure-Python Milvus Lite, for the
# benchmarks that measure both Lite generations side by side (bench/milvus_bench.py, bench/query_latency.py
# --backends lite3). Two milvus-lite versions cannot share one venv; the project's own runs milvus-lite 2.5.1.
#   bash bench/setup_lite3_venv.sh            # -> ~/.cache/neural_search/lite3-venv
#   NS_LITE3_VENV=/path/to/venv bash bench/setup_lite3_venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${NS_LITE3_VENV:-$HOME/.cache/neural_search/lite3-venv}
LITE_VERSION=3.2.2
PYTHON=${PYTHON:-python3}
want=$( (cat requirements.txt pyproject.toml; echo "$LITE_VERSION") | sha256sum | cut -d' ' -f1)

if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
  echo "setup_lite3_venv: milvus-lite $LITE_VERSION venv already set up in $VENV"
  exit 0
fi
start=$SECONDS
echo "setup_lite3_venv: installing requirements.txt with milvus-lite==$LITE_VERSION into $VENV (a few minutes the first time)"
mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
# the project's pins, with the other milvus-lite; "-e ." is this repository
sed -e "s/^milvus-lite==.*/milvus-lite==$LITE_VERSION/" -e "s|^-e \.$|-e $PWD|" requirements.txt >"$requirements"
PYTHONWARNINGS="ignore:Editable installation" "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
echo "$want" >"$VENV/.requirements.sha256"
echo "setup_lite3_venv: $VENV ready ($((SECONDS - start))s)"
