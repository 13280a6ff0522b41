#!/usr/bin/env bash
# Recall@K / MRR@10 before and after reranking a recall result with the exported ERNIE-Gram reranker.
# Flags after the script name go to ernie_matching/rerank_results.py.
#
#   bash scripts/rerank_evaluate.sh                                    # after scripts/train_ernie_matching.sh
#   RECALL_RESULT=recall_result_dir/recall_result.txt NAME=dense bash scripts/rerank_evaluate.sh
#   RECALL_RESULT=out/milvus_hybrid.txt NAME=hybrid bash scripts/rerank_evaluate.sh --recall_num 100 --top_k 50
#
# Environment (defaults in brackets):
#   DATA_DIR       the canonical layout [data/sample]
#   OUTPUT_DIR     where scripts/train_ernie_matching.sh wrote [output/stages/<data dir name>]
#   MODEL_DIR      the exported reranker [$OUTPUT_DIR/export/reranker]
#   RECALL_RESULT  query<TAB>doc<TAB>score of the dev queries, best first [$OUTPUT_DIR/recall/bm25_dev.txt]
#   PAIRS          the gold pairs of those queries [$DATA_DIR/recall/dev.csv]
#   NAME           label of this recall in the outputs [bm25]
#   RECALL_NUM     candidates reranked per query [50]
#   DEVICE         cpu or gpu [cpu]
#
# Writes $OUTPUT_DIR/rerank/$NAME/recall_result.txt (the reranked lists, same format) and appends the
# before/after lines to $OUTPUT_DIR/rerank_metrics.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/common.sh  # PYTHON, DATA_DIR, OUTPUT_DIR, DEVICE
MODEL_DIR=${MODEL_DIR:-$OUTPUT_DIR/export/reranker}
RECALL_RESULT=${RECALL_RESULT:-$OUTPUT_DIR/recall/bm25_dev.txt}
PAIRS=${PAIRS:-$DATA_DIR/recall/dev.csv}
NAME=${NAME:-bm25}
RECALL_NUM=${RECALL_NUM:-50}

for f in "$MODEL_DIR/inference.pdiparams" "$RECALL_RESULT" "$PAIRS"; do
    if [[ ! -f "$f" ]]; then
        echo "error: $f not found (run scripts/train_ernie_matching.sh first, or set MODEL_DIR / RECALL_RESULT / PAIRS)" >&2
        exit 2
    fi
done

"$PYTHON" ernie_matching/rerank_results.py --model_dir "$MODEL_DIR" --device "$DEVICE" \
    --recall_result_file "$RECALL_RESULT" --recall_num "$RECALL_NUM" \
    --output_file "$OUTPUT_DIR/rerank/$NAME/recall_result.txt" \
    --similar_text_pair_file "$PAIRS" --result_file "$OUTPUT_DIR/rerank_metrics.tsv" "$@"
