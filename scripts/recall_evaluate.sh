#!/usr/bin/env bash
# Exact-search recall of the dev queries over the corpus with a trained recall model, then Recall@1/5/10/20/50,
# MRR@10 and nDCG@10: the pipeline's `recall_eval` commands for one model. Flags after the script name go to
# inbatch_negative/recall.py (e.g. --index hnsw, --recall_num 100).
#
#   bash scripts/recall_evaluate.sh                     # after train_inbatch_negative.sh
#   PARAMS_PATH=output/stages/sample/simcse/domain/model_final NAME=domain_simcse bash scripts/recall_evaluate.sh
#   PARAMS_PATH= NAME=untrained bash scripts/recall_evaluate.sh           # the backbone alone
#
# Environment (defaults in brackets), besides those of scripts/common.sh (DATA_DIR, OUTPUT_DIR, RECIPE,
# PRESET, DEVICE, DRY_RUN):
#   MODEL        backbone + tokenizer [as train_simcse.sh]
#   PARAMS_PATH  the checkpoint [$OUTPUT_DIR/inbatch/domain_simcse/model_final]; empty: the backbone alone
#   EMB          --output_emb_size [the recipe's; 0 without PARAMS_PATH]
#   NAME         row label [domain_simcse_inbatch]
#   PAIRS        the query<TAB>title pairs scored [$DATA_DIR/recall/dev.csv]
#   RESULT_FILE  also append the table line to this file []
# Writes $OUTPUT_DIR/recall/<NAME>/recall_result.txt and $OUTPUT_DIR/metrics/<NAME>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
require_data recall/corpus.csv recall/dev.csv

if [[ -z "${MODEL:-}" ]]; then domain_backbone ernie; MODEL=$DOMAIN_BACKBONE; fi
PARAMS_PATH=${PARAMS_PATH-$OUTPUT_DIR/inbatch/domain_simcse/model_final}
NAME=${NAME:-domain_simcse_inbatch}
PAIRS=${PAIRS:-$DATA_DIR/recall/dev.csv}
params=()
if [[ -n "$PARAMS_PATH" ]]; then
    params=(--params_path "$PARAMS_PATH" --output_emb_size "${EMB:-$("$PYTHON" scripts/recipe.py setting inbatch output_emb_size --recipe "$RECIPE" --preset "$PRESET")}")
else
    params=(--output_emb_size 0)
fi
table=()
if [[ -n "${RESULT_FILE:-}" ]]; then table=(--result_file "$RESULT_FILE"); fi

run "$PYTHON" inbatch_negative/recall.py --model_name_or_path "$MODEL" "${params[@]}" --corpus_file "$DATA_DIR/recall/corpus.csv" \
    --similar_text_pair_file "$PAIRS" --recall_result_dir "$OUTPUT_DIR/recall/$NAME" --recall_num 50 --device "$DEVICE" "$@"
run "$PYTHON" inbatch_negative/evaluate.py --similar_text_pair_file "$PAIRS" --recall_result_file "$OUTPUT_DIR/recall/$NAME/recall_result.txt" \
    --recall_num 50 --name "$NAME" --output_json "$OUTPUT_DIR/metrics/$NAME.json" "${table[@]}"
