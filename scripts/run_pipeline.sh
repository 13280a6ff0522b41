#!/usr/bin/env bash
# The whole chain in one command (see scripts/pipeline.py --help for every option):
#   bash scripts/run_pipeline.sh                                   # bundled sample, mini preset, CPU
#   bash scripts/run_pipeline.sh --data_dir data/csl --ablation    # CSL (data/prepare_csl.py output)
# Environment variables with the same meaning: DATA_DIR, OUTPUT_DIR, PRESET, DEVICE, NPROC, MILVUS_URI.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh  # PYTHON
exec "$PYTHON" scripts/pipeline.py "$@"
