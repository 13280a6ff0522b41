#!/usr/bin/env bash
# Exact-search recall of the dev queries over the corpus with a trained model, then Recall@1/5/10/20/50,
# MRR@10 and nDCG@10: one table line printed and appended to RESULT_FILE, plus a JSON file.
# Flags after the script name go to recall.py (e.g. --index hnsw, --recall_num 100).
#
#   bash scripts/recall_evaluate.sh                                       # checkpoints/inbatch/model_best
#   PARAMS_PATH=checkpoints/simcse/model_final NAME=simcse bash scripts/recall_evaluate.sh
#   PARAMS_PATH= NAME=untrained bash scripts/recall_evaluate.sh           # the untrained backbone
#
# Environment (defaults in brackets), besides DATA_DIR, MODEL, EMB, DEVICE of train_simcse.sh:
#   PARAMS_PATH  the checkpoint [checkpoints/inbatch/model_best]; empty: the backbone alone
#   NAME         row label [the checkpoint path]
#   OUT_DIR      recall_result.txt and <NAME>.json go here [output/recall/<NAME>]
#   RESULT_FILE  the table the line is appended to [output/recall/recall_metrics.tsv]
#   RECALL_NUM   [50]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/recall_common.sh

PARAMS_PATH=${PARAMS_PATH-checkpoints/inbatch/model_best}
NAME=${NAME:-${PARAMS_PATH:-untrained}}
SAFE_NAME=${NAME//\//_}
OUT_DIR=${OUT_DIR:-output/recall/$SAFE_NAME}
RESULT_FILE=${RESULT_FILE:-output/recall/recall_metrics.tsv}
RECALL_NUM=${RECALL_NUM:-50}

params=()
[[ -n "$PARAMS_PATH" ]] && params=(--params_path "$PARAMS_PATH")
"$PYTHON" inbatch_negative/recall.py --model_name_or_path "$MODEL" "${params[@]}" ${EMB:+--output_emb_size "$EMB"} --device "$DEVICE" \
    --corpus_file "$DATA_DIR/recall/corpus.csv" --similar_text_pair_file "$DATA_DIR/recall/dev.csv" \
    --recall_result_dir "$OUT_DIR" --recall_num "$RECALL_NUM" "$@"
"$PYTHON" inbatch_negative/evaluate.py --similar_text_pair_file "$DATA_DIR/recall/dev.csv" \
    --recall_result_file "$OUT_DIR/recall_result.txt" --recall_num "$RECALL_NUM" \
    --name "$NAME" --result_file "$RESULT_FILE" --output_json "$OUT_DIR/$SAFE_NAME.json"
