#!/usr/bin/env bash
# Embeds the Milvus corpus with the exported recall model -> corpus_embedding.npy
# (PaddleNLP's recall/milvus/scripts/feature_extract.sh). Extra flags go to feature_extract.py:
#   bash scripts/feature_extract.sh                  # the pipeline's sample outputs (scripts/run_pipeline.sh)
#   OUTPUT_DIR=output/pipeline/csl CORPUS_FILE=data/csl/milvus/milvus_data.csv bash scripts/feature_extract.sh --enable_mkldnn
# Environment: OUTPUT_DIR (pipeline output), MODEL_DIR, CORPUS_FILE, OUTPUT_PATH, BATCH_SIZE, MAX_SEQ_LENGTH, DEVICE.
# A killed run continues from its last finished chunk when run again.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUT_DIR=${OUTPUT_DIR:-output/pipeline/sample}  # what scripts/run_pipeline.sh built
source scripts/common.sh  # PYTHON
exec "$PYTHON" recall/milvus/feature_extract.py \
    --model_dir "${MODEL_DIR:-$OUTPUT_DIR/export/recall}" \
    --corpus_file "${CORPUS_FILE:-data/sample/milvus/milvus_data.csv}" \
    --output_path "${OUTPUT_PATH:-$OUTPUT_DIR/milvus}" \
    --batch_size "${BATCH_SIZE:-64}" \
    --max_seq_length "${MAX_SEQ_LENGTH:-64}" \
    --device "${DEVICE:-cpu}" \
    "$@"
