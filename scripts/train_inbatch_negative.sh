#!/usr/bin/env bash
# In-batch negatives (supervised) on recall/train.csv, warm-started from SimCSE when its checkpoint
# exists, with hard negatives mined first (HARD_NEGATIVES=bm25 or model); Recall@K on the dev pairs
# after each epoch, the best Recall@5 model kept as SAVE_DIR/model_best.
# Flags after the script name go to inbatch_negative/train_batch_neg.py.
#
#   bash scripts/train_inbatch_negative.sh                               # sample; SimCSE -> in-batch if trained
#   INIT_FROM_CKPT= HARD_NEGATIVES=none bash scripts/train_inbatch_negative.sh   # in-batch alone
#   DATA_DIR=data/csl MODEL=output/domain_pretrain_csl/ernie/final \
#       INIT_FROM_CKPT=checkpoints/simcse/model_final bash scripts/train_inbatch_negative.sh
#   NPROC=2 bash scripts/train_inbatch_negative.sh
#
# Environment (defaults in brackets), besides DATA_DIR, MODEL, EMB, NPROC, DEVICE of train_simcse.sh:
#   INIT_FROM_CKPT  a SimCSE checkpoint to start from [checkpoints/simcse/model_final if it exists]
#   HARD_NEGATIVES  bm25 | model (recall of INIT_FROM_CKPT's model) | none [bm25]
#   SAVE_DIR        [checkpoints/inbatch]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/recall_common.sh

SAVE_DIR=${SAVE_DIR:-checkpoints/inbatch}
if [[ -z "${INIT_FROM_CKPT+set}" && -f checkpoints/simcse/model_final/model_state.pdparams ]]; then
    INIT_FROM_CKPT=checkpoints/simcse/model_final
fi
INIT_FROM_CKPT=${INIT_FROM_CKPT:-}
HARD_NEGATIVES=${HARD_NEGATIVES:-bm25}

extra=()
[[ -n "$INIT_FROM_CKPT" ]] && extra+=(--init_from_ckpt "$INIT_FROM_CKPT")
case "$HARD_NEGATIVES" in
    none) ;;
    bm25 | model)
        mined="$SAVE_DIR/hard_negatives_$HARD_NEGATIVES.tsv"
        model_args=()
        if [[ "$HARD_NEGATIVES" == model ]]; then
            [[ -n "$INIT_FROM_CKPT" ]] || { echo "error: HARD_NEGATIVES=model needs INIT_FROM_CKPT (the model whose recall mines them)" >&2; exit 2; }
            model_args=(--model_name_or_path "$MODEL" --params_path "$INIT_FROM_CKPT" ${EMB:+--output_emb_size "$EMB"} --device "$DEVICE")
        fi
        "$PYTHON" inbatch_negative/mine_hard_negatives.py --method "$HARD_NEGATIVES" "${model_args[@]}" \
            --train_set_file "$DATA_DIR/recall/train.csv" --corpus_file "$DATA_DIR/recall/corpus.csv" --output_file "$mined"
        extra+=(--hard_negative_file "$mined")
        ;;
    *) echo "error: HARD_NEGATIVES must be bm25, model or none (got $HARD_NEGATIVES)" >&2; exit 2 ;;
esac

run_training inbatch_negative/train_batch_neg.py --train_set_file "$DATA_DIR/recall/train.csv" \
    --model_name_or_path "$MODEL" --save_dir "$SAVE_DIR" ${EMB:+--output_emb_size "$EMB"} --device "$DEVICE" \
    --evaluate --similar_text_pair_file "$DATA_DIR/recall/dev.csv" --corpus_file "$DATA_DIR/recall/corpus.csv" \
    --recall_result_dir "$SAVE_DIR/recall_result" "${extra[@]}" "$@"
