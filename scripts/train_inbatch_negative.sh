#!/usr/bin/env bash
# In-batch negatives (supervised), warm-started from SimCSE, with BM25 hard negatives mined first: the
# pipeline's `hard_negatives` and `inbatch` stages with the same commands (settings: recipes/*.yml). Flags
# after the script name go to inbatch_negative/train_batch_neg.py (they override the recipe's).
#
#   bash scripts/train_inbatch_negative.sh              # after train_simcse.sh (else in-batch alone)
#   INIT_FROM_CKPT= HARD_NEGATIVES=none bash scripts/train_inbatch_negative.sh    # in-batch alone, no mining
#   EVALUATE=1 bash scripts/train_inbatch_negative.sh   # also Recall@K on the dev pairs after each epoch
#   DATA_DIR=data/csl NPROC=2 bash scripts/train_inbatch_negative.sh
#
# Environment (defaults in brackets), besides those of scripts/common.sh (DATA_DIR, OUTPUT_DIR, RECIPE,
# BUDGET, PRESET, NPROC, DEVICE, DRY_RUN):
#   MODEL           backbone + tokenizer [as train_simcse.sh: $OUTPUT_DIR/pretrain/ernie/final, else a bootstrap]
#   TRAIN_FILE      query<TAB>title pairs [$DATA_DIR/recall/train.csv; the pipeline: its 3/4 split]
#   INIT_FROM_CKPT  the SimCSE checkpoint to start from [$OUTPUT_DIR/simcse/domain/model_final if it exists]
#   HARD_NEGATIVES  recipe (the recipe's miner: BM25) | model (the recall of INIT_FROM_CKPT's model) | none [recipe]
#   SAVE_DIR        [$OUTPUT_DIR/inbatch/domain_simcse]
#   EVALUATE        1: Recall@K of recall/dev.csv after each epoch; model_best is then picked on dev, so
#                   report model_final [0]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
require_data recall/train.csv recall/dev.csv recall/corpus.csv

if [[ -z "${MODEL:-}" ]]; then domain_backbone ernie; MODEL=$DOMAIN_BACKBONE; fi
TRAIN_FILE=${TRAIN_FILE:-$DATA_DIR/recall/train.csv}
if [[ -z "${INIT_FROM_CKPT+set}" && -f "$OUTPUT_DIR/simcse/domain/model_final/model_state.pdparams" ]]; then
    INIT_FROM_CKPT=$OUTPUT_DIR/simcse/domain/model_final
fi
INIT_FROM_CKPT=${INIT_FROM_CKPT:-}
HARD_NEGATIVES=${HARD_NEGATIVES:-recipe}
SAVE_DIR=${SAVE_DIR:-$OUTPUT_DIR/inbatch/domain_simcse}

init=() negatives=() evaluation=()
if [[ -n "$INIT_FROM_CKPT" ]]; then init=(--init_from_ckpt "$INIT_FROM_CKPT"); fi
case "$HARD_NEGATIVES" in
    none) ;;
    recipe | model)
        recipe_flags hard_negatives
        miner=(--train_set_file "$TRAIN_FILE" --corpus_file "$DATA_DIR/recall/corpus.csv" --output_file "$OUTPUT_DIR/hard_negatives.tsv" "${RECIPE_FLAGS[@]}")
        if [[ "$HARD_NEGATIVES" == model ]]; then
            [[ -n "$INIT_FROM_CKPT" ]] || { echo "error: HARD_NEGATIVES=model needs INIT_FROM_CKPT (the model whose recall mines them)" >&2; exit 2; }
            miner+=(--method model --model_name_or_path "$MODEL" --params_path "$INIT_FROM_CKPT" --device "$DEVICE")
        fi
        run "$PYTHON" inbatch_negative/mine_hard_negatives.py "${miner[@]}"
        negatives=(--hard_negative_file "$OUTPUT_DIR/hard_negatives.tsv")
        ;;
    *) echo "error: HARD_NEGATIVES must be recipe, model or none (got $HARD_NEGATIVES)" >&2; exit 2 ;;
esac
if [[ "${EVALUATE:-0}" == 1 ]]; then
    evaluation=(--evaluate --similar_text_pair_file "$DATA_DIR/recall/dev.csv" --corpus_file "$DATA_DIR/recall/corpus.csv" --recall_result_dir "$SAVE_DIR/recall_result")
fi

recipe_flags inbatch
train inbatch_negative/train_batch_neg.py --train_set_file "$TRAIN_FILE" --model_name_or_path "$MODEL" "${init[@]}" "${negatives[@]}" \
    --save_dir "$SAVE_DIR" "${RECIPE_FLAGS[@]}" --device "$DEVICE" "${evaluation[@]}" "$@"
