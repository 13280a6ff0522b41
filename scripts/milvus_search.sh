#!/usr/bin/env bash
# Inserts corpus_embedding.npy into Milvus, then searches the neighbours of one stored document
# (PaddleNLP's recall/milvus/scripts/search.sh). Extra flags go to both commands (e.g. --uri, --token):
#   bash scripts/milvus_search.sh
#   MILVUS_URI=http://localhost:19530 MILVUS_TOKEN=root:Milvus bash scripts/milvus_search.sh
# Environment: OUTPUT_DIR (pipeline output), CORPUS_FILE, EMBEDDING_PATH, MILVUS_URI, MILVUS_TOKEN, INDEX, TOP_K.
# CORPUS_FILE may be the paper records (data/sample/milvus/papers.jsonl, the default, what the pipeline inserts) or
# the titles beside them (CORPUS_FILE=data/sample/milvus/milvus_data.csv: the same titles line for line, so the same
# embeddings, without the fields search/query.py --filter reads); the search shows the papers most like document
# INDEX (itself left out): its own id for records with ids (the collection keyed by them, default sample-00018), its
# corpus line for titles (keyed by lines, default 18). A database keyed by paper ids takes only records with ids.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUT_DIR=${OUTPUT_DIR:-output/pipeline/sample}  # what scripts/run_pipeline.sh built
source scripts/common.sh  # PYTHON
MILVUS=(--uri "${MILVUS_URI:-$OUTPUT_DIR/milvus/neural_search.db}")
if [ -n "${MILVUS_TOKEN:-}" ]; then MILVUS+=(--token "$MILVUS_TOKEN"); fi
CORPUS=${CORPUS_FILE:-data/sample/milvus/papers.jsonl}  # the pipeline's collection: keyed by these records' ids
DEFAULT_INDEX=18
[[ "$CORPUS" == *.jsonl ]] && DEFAULT_INDEX=sample-00018
"$PYTHON" recall/milvus/insert.py \
    --data_path "$CORPUS" \
    --embedding_path "${EMBEDDING_PATH:-$OUTPUT_DIR/milvus/corpus_embedding.npy}" \
    "${MILVUS[@]}" "$@"
"$PYTHON" search/query.py --search_by_id "${INDEX:-$DEFAULT_INDEX}" --top_k "${TOP_K:-10}" "${MILVUS[@]}" "$@"
