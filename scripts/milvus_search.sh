#!/usr/bin/env bash
# Inserts corpus_embedding.npy into Milvus, then searches the neighbours of one stored document
# (PaddleNLP's recall/milvus/scripts/search.sh). Extra flags go to both commands (e.g. --uri, --token):
#   bash scripts/milvus_search.sh
#   MILVUS_URI=http://localhost:19530 MILVUS_TOKEN=root:Milvus bash scripts/milvus_search.sh
# Environment: OUTPUT_DIR (pipeline output), CORPUS_FILE, EMBEDDING_PATH, MILVUS_URI, MILVUS_TOKEN, INDEX, TOP_K.
# CORPUS_FILE may be the titles (milvus_data.csv, the default) or the paper records beside them
# (CORPUS_FILE=data/sample/milvus/papers.jsonl: the same titles line for line, so the same embeddings, plus the
# fields search/query.py --filter reads); the search shows the papers most like document INDEX (itself left out).
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUT_DIR=${OUTPUT_DIR:-output/pipeline/sample}  # what scripts/run_pipeline.sh built
source scripts/common.sh  # PYTHON
MILVUS=(--uri "${MILVUS_URI:-$OUTPUT_DIR/milvus/neural_search.db}")
if [ -n "${MILVUS_TOKEN:-}" ]; then MILVUS+=(--token "$MILVUS_TOKEN"); fi
"$PYTHON" recall/milvus/insert.py \
    --data_path "${CORPUS_FILE:-data/sample/milvus/milvus_data.csv}" \
    --embedding_path "${EMBEDDING_PATH:-$OUTPUT_DIR/milvus/corpus_embedding.npy}" \
    "${MILVUS[@]}" "$@"
"$PYTHON" search/query.py --search_by_id "${INDEX:-18}" --top_k "${TOP_K:-10}" "${MILVUS[@]}" "$@"
