#!/usr/bin/env bash
# SimCSE (unsupervised) on recall/train_unsupervised.csv: the pipeline's `simcse` stage with the same
# command (settings: recipes/*.yml). Flags after the script name go to simcse/train.py (they override the
# recipe's).
#
#   bash scripts/train_simcse.sh                        # after run_domain_pretrain.sh (else from a bootstrap)
#   DATA_DIR=data/csl bash scripts/train_simcse.sh
#   EVALUATE=1 bash scripts/train_simcse.sh             # also Recall@K on the dev pairs (reported, never used to choose)
#   MODEL=ernie-1.0 RECIPE=paddlenlp DEVICE=gpu NPROC=2 bash scripts/train_simcse.sh   # needs internet + GPU
#
# Environment (defaults in brackets), besides those of scripts/common.sh (DATA_DIR, OUTPUT_DIR, RECIPE,
# BUDGET, PRESET, NPROC, DEVICE, DRY_RUN):
#   MODEL     backbone + tokenizer [$OUTPUT_DIR/pretrain/ernie/final if trained, else a from-scratch
#             ERNIE bootstrapped into $OUTPUT_DIR/bootstrap/ernie]
#   SAVE_DIR  checkpoints: model_{step}, model_final [$OUTPUT_DIR/simcse/domain]
#   EVALUATE  1: Recall@K of recall/dev.csv over recall/corpus.csv after each epoch [0]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
require_data recall/train_unsupervised.csv recall/dev.csv recall/corpus.csv

if [[ -z "${MODEL:-}" ]]; then domain_backbone ernie; MODEL=$DOMAIN_BACKBONE; fi
SAVE_DIR=${SAVE_DIR:-$OUTPUT_DIR/simcse/domain}
evaluation=()
if [[ "${EVALUATE:-0}" == 1 ]]; then evaluation=(--dev_set_file "$DATA_DIR/recall/dev.csv" --corpus_file "$DATA_DIR/recall/corpus.csv"); fi

recipe_flags simcse
train simcse/train.py --train_set_file "$DATA_DIR/recall/train_unsupervised.csv" --model_name_or_path "$MODEL" \
    --save_dir "$SAVE_DIR" "${RECIPE_FLAGS[@]}" --device "$DEVICE" "${evaluation[@]}" "$@"
