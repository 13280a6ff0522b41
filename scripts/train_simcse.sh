#!/usr/bin/env bash
# SimCSE (unsupervised) on recall/train_unsupervised.csv, evaluated on the dev pairs after each epoch.
# Flags after the script name go to simcse/train.py (they override the ones below).
#
#   bash scripts/train_simcse.sh                                         # the bundled sample
#   DATA_DIR=data/csl MODEL=output/domain_pretrain_csl/ernie/final bash scripts/train_simcse.sh
#   NPROC=2 bash scripts/train_simcse.sh --batch_size 32                  # 2 processes (gloo on CPU)
#   DEVICE=gpu MODEL=ernie-1.0 bash scripts/train_simcse.sh --epochs 3
#
# Environment (defaults in brackets):
#   DATA_DIR  the data layout [data/sample]
#   MODEL     backbone + tokenizer: the domain-pretrained ERNIE when chaining; empty: a from-scratch
#             mini ERNIE bootstrapped once from DATA_DIR into output/bootstrap/<data dir name>/ernie []
#   SAVE_DIR  checkpoints: SAVE_DIR/model_{step}, model_final, model_best [checkpoints/simcse]
#   EMB       --output_emb_size; empty: none for a new model (the hidden size), else the checkpoint's []
#   NPROC     processes under paddle.distributed.launch [1]
#   DEVICE    cpu or gpu [cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/recall_common.sh

run_training simcse/train.py --train_set_file "$DATA_DIR/recall/train_unsupervised.csv" \
    --model_name_or_path "$MODEL" --save_dir "${SAVE_DIR:-checkpoints/simcse}" ${EMB:+--output_emb_size "$EMB"} --device "$DEVICE" \
    --dev_set_file "$DATA_DIR/recall/dev.csv" --corpus_file "$DATA_DIR/recall/corpus.csv" "$@"
