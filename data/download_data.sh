#!/usr/bin/env bash
# Fetches PaddleNLP's literature_search_data (the dataset of applications/neural_search) into data/
# and unzips it there (data/literature_search_data/{milvus,recall,sort}/...).
#
#   bash data/download_data.sh
#
# Offline (no route to bj.bcebos.com) it says so and exits 1: use the bundled data/sample/ or build
# the layout from CSL with data/prepare_csl.py instead.
set -euo pipefail

URL="${DATA_URL:-https://bj.bcebos.com/v1/paddlenlp/data/literature_search_data.zip}"  # DATA_URL: a mirror
DATA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZIP="$DATA_DIR/literature_search_data.zip"
PART="$ZIP.part"

if ! command -v curl >/dev/null 2>&1; then
    echo "error: curl is not installed; download $URL by hand and unzip it into $DATA_DIR" >&2
    exit 1
fi

echo "downloading $URL"
# short connect timeout: offline machines fail in seconds instead of hanging
if ! curl --fail --location --silent --show-error --connect-timeout "${CONNECT_TIMEOUT:-10}" \
        --retry 2 --output "$PART" "$URL"; then
    rm -f "$PART"
    echo "error: could not download $URL (offline, or the server refused it)." >&2
    echo "       Use the bundled data/sample/, or build the same layout from CSL: python data/prepare_csl.py --help" >&2
    exit 1
fi
mv "$PART" "$ZIP"

if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$ZIP" -d "$DATA_DIR"
else
    python3 -m zipfile -e "$ZIP" "$DATA_DIR"
fi
rm -f "$ZIP"
echo "unzipped into $DATA_DIR/literature_search_data"
