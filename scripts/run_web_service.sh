#!/usr/bin/env bash
# Starts the web demo / HTTP service over what scripts/run_pipeline.sh built, then open the printed URL.
#   bash scripts/run_web_service.sh                        # bundled sample's pipeline output
#   OUTPUT_DIR=output/pipeline/csl bash scripts/run_web_service.sh --port 8080
#   MODEL_DIR=... RERANKER_DIR=... MILVUS_URI=http://localhost:19530 bash scripts/run_web_service.sh --token root:Milvus
# Environment: OUTPUT_DIR (pipeline output), MODEL_DIR (exported recall model), RERANKER_DIR (exported
# reranker; used when it exists, RERANKER_DIR= to go without), MILVUS_URI, HOST, PORT. Any other flag of
# `python -m search.web_service --help` is passed through.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUT_DIR=${OUTPUT_DIR:-output/pipeline/sample}  # what scripts/run_pipeline.sh built
source scripts/common.sh  # PYTHON

MODEL_DIR=${MODEL_DIR:-$OUTPUT_DIR/export/recall}
RERANKER_DIR=${RERANKER_DIR-$OUTPUT_DIR/export/reranker}
MILVUS_URI=${MILVUS_URI:-$OUTPUT_DIR/milvus/neural_search.db}

if [ ! -d "$MODEL_DIR" ]; then
  echo "error: no exported recall model at $MODEL_DIR: run scripts/run_pipeline.sh first, or set OUTPUT_DIR / MODEL_DIR" >&2
  exit 2
fi
reranker=()
if [ -n "$RERANKER_DIR" ] && [ -d "$RERANKER_DIR" ]; then
  reranker=(--reranker_dir "$RERANKER_DIR")
else
  echo "note: no reranker at ${RERANKER_DIR:-(RERANKER_DIR empty)}: serving recall only (the page's rerank switch is off)" >&2
fi
exec "$PYTHON" -m search.web_service --model_dir "$MODEL_DIR" --uri "$MILVUS_URI" "${reranker[@]}" \
  --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
