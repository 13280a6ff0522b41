#!/usr/bin/env bash
# The ERNIE-Gram reranker end to end: recall the training queries -> mine hard negatives from what was
# recalled -> train (pairwise) -> AUC -> export for Paddle Inference. Flags after the script name go to
# ernie_matching/train_pairwise.py.
#
#   bash scripts/train_ernie_matching.sh                                   # bundled sample, BM25 recall
#   DATA_DIR=data/csl BACKBONE=output/domain_pretrain/ernie-gram/final \
#       bash scripts/train_ernie_matching.sh --epochs 2                    # CSL, domain-pretrained backbone
#   TRAIN_RECALL=out/recall_train/recall_result.txt DEV_RECALL=out/recall_dev/recall_result.txt \
#       bash scripts/train_ernie_matching.sh                               # mine from dense / hybrid recall
#   BACKBONE=ernie-gram-zh DEVICE=gpu NPROC=2 bash scripts/train_ernie_matching.sh --batch_size 64
#
# Environment (defaults in brackets):
#   DATA_DIR       the canonical layout (data/prepare_csl.py output) [data/sample]
#   OUTPUT_DIR     everything goes here [output/ernie_matching]
#   BACKBONE       ernie-gram-zh (online), a save_pretrained directory (domain_pretrain output);
#                  empty: a from-scratch ERNIE-Gram bootstrapped from the data []
#   TRAIN_RECALL   recall_result.txt of the training queries (recall/train.csv); empty: BM25 []
#   DEV_RECALL     recall_result.txt of the dev queries (recall/dev.csv); empty: BM25 []
#   NEG_PER_QUERY  mined negatives per training query [4]
#   WARMUP_STEPS   from scratch only: steps of the pseudo-query warm-up stage (0: none) [0]
#   PRESET         size of a bootstrapped backbone: mini, small or base [mini]
#   NPROC          training processes (paddle.distributed.launch) [1]
#   DEVICE         cpu or gpu [cpu]
#
# Results: $OUTPUT_DIR/checkpoints/model_best/ (best dev AUC), $OUTPUT_DIR/exported/ (Paddle Inference,
# what scripts/rerank_evaluate.sh and `Reranker(model_dir=...)` use), $OUTPUT_DIR/auc.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${DATA_DIR:-data/sample}
OUTPUT_DIR=${OUTPUT_DIR:-output/ernie_matching}
BACKBONE=${BACKBONE:-}
TRAIN_RECALL=${TRAIN_RECALL:-}
DEV_RECALL=${DEV_RECALL:-}
NEG_PER_QUERY=${NEG_PER_QUERY:-4}
WARMUP_STEPS=${WARMUP_STEPS:-0}
PRESET=${PRESET:-mini}
NPROC=${NPROC:-1}
DEVICE=${DEVICE:-cpu}
PYTHON=${PYTHON:-python}

for f in recall/train.csv recall/dev.csv recall/corpus.csv recall/train_unsupervised.csv; do
    if [[ ! -f "$DATA_DIR/$f" ]]; then
        echo "error: $DATA_DIR/$f not found (DATA_DIR must hold the canonical layout, see data/README.md)" >&2
        exit 2
    fi
done
mkdir -p "$OUTPUT_DIR/recall" "$OUTPUT_DIR/data"

# 1. the backbone: a from-scratch ERNIE-Gram unless one is given
FROM_SCRATCH=0
if [[ -z "$BACKBONE" ]]; then
    FROM_SCRATCH=1
    BACKBONE="$OUTPUT_DIR/bootstrap"
    if [[ ! -f "$BACKBONE/config.json" ]]; then
        $PYTHON -m ns_common.bootstrap --corpus_files "$DATA_DIR/recall/train_unsupervised.csv" \
            --model_type ernie-gram --preset "$PRESET" --save_dir "$BACKBONE"
    fi
fi

# 2. what the recall returns for the training and the dev queries (BM25 unless given)
if [[ -z "$TRAIN_RECALL" ]]; then
    TRAIN_RECALL="$OUTPUT_DIR/recall/bm25_train.txt"
    $PYTHON -m ns_common.bm25 --corpus_file "$DATA_DIR/recall/corpus.csv" \
        --similar_text_pair_file "$DATA_DIR/recall/train.csv" --recall_result_file "$TRAIN_RECALL" --recall_num 50
fi
if [[ -z "$DEV_RECALL" ]]; then
    DEV_RECALL="$OUTPUT_DIR/recall/bm25_dev.txt"
    $PYTHON -m ns_common.bm25 --corpus_file "$DATA_DIR/recall/corpus.csv" \
        --similar_text_pair_file "$DATA_DIR/recall/dev.csv" --recall_result_file "$DEV_RECALL" --recall_num 50
fi

# 3. mined data: train triples + a dev file (10% of the training queries, for picking the best step),
#    and a test file from the dev queries
$PYTHON ernie_matching/mine_pairwise.py --recall_result_file "$TRAIN_RECALL" --pairs_file "$DATA_DIR/recall/train.csv" \
    --output_train_file "$OUTPUT_DIR/data/train_pairwise.csv" --output_labeled_file "$OUTPUT_DIR/data/dev_pairwise.csv" \
    --labeled_ratio 0.1 --neg_per_query "$NEG_PER_QUERY"
$PYTHON ernie_matching/mine_pairwise.py --recall_result_file "$DEV_RECALL" --pairs_file "$DATA_DIR/recall/dev.csv" \
    --output_labeled_file "$OUTPUT_DIR/data/test_pairwise.csv" --neg_per_query "$NEG_PER_QUERY"

# 4. training. A pretrained backbone: the mined data, PaddleNLP's recipe. From scratch: the logistic loss,
#    a from-scratch learning rate, pseudo queries (random and BM25 negatives) besides the mined pairs; the
#    exact-match token types (train_pairwise.py's default) let it see word matches from the first step.
#    WARMUP_STEPS > 0 adds a warm-up on pseudo queries with random negatives first.
LAUNCH=()
if [[ "$NPROC" -gt 1 ]]; then
    LAUNCH=(-m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "$OUTPUT_DIR/logs")
fi
TRAIN=("${LAUNCH[@]}" ernie_matching/train_pairwise.py --model_name_or_path "$BACKBONE" --device "$DEVICE"
       --test_file "$OUTPUT_DIR/data/dev_pairwise.csv")
if [[ "$FROM_SCRATCH" == 1 ]]; then
    SCRATCH=(--loss logistic --learning_rate 5e-4 --warmup_proportion 0 --max_grad_norm 0 --dropout 0.0)
    $PYTHON ernie_matching/pseudo_pairs.py --corpus_file "$DATA_DIR/recall/corpus.csv" \
        --output_file "$OUTPUT_DIR/data/pseudo_random.csv" --random_negatives 1 --bm25_negatives 0
    $PYTHON ernie_matching/pseudo_pairs.py --corpus_file "$DATA_DIR/recall/corpus.csv" \
        --output_file "$OUTPUT_DIR/data/pseudo_pairwise.csv" --random_negatives 1 --bm25_negatives 1 --seed 1001
    INIT=()
    if [[ "$WARMUP_STEPS" -gt 0 ]]; then
        $PYTHON "${TRAIN[@]}" --train_file "$OUTPUT_DIR/data/pseudo_random.csv" --save_dir "$OUTPUT_DIR/warmup" \
            --max_steps "$WARMUP_STEPS" --eval_step 250 "${SCRATCH[@]}"
        INIT=(--init_from_ckpt "$OUTPUT_DIR/warmup/model_final")
    fi
    $PYTHON "${TRAIN[@]}" --train_file "$OUTPUT_DIR/data/pseudo_pairwise.csv" "$OUTPUT_DIR/data/train_pairwise.csv" \
        --save_dir "$OUTPUT_DIR/checkpoints" --epochs 3 "${INIT[@]}" "${SCRATCH[@]}" "$@"
else
    $PYTHON "${TRAIN[@]}" --train_file "$OUTPUT_DIR/data/train_pairwise.csv" --save_dir "$OUTPUT_DIR/checkpoints" "$@"
fi

# 5. AUC on the mined test file, and on the foundation's lexical-negative one when there is one
$PYTHON ernie_matching/evaluate.py --test_file "$OUTPUT_DIR/data/test_pairwise.csv" --device "$DEVICE" \
    --params_path "$OUTPUT_DIR/checkpoints/model_best" --results_file "$OUTPUT_DIR/auc.jsonl"
if [[ -f "$DATA_DIR/sort/test_pairwise.csv" ]]; then
    $PYTHON ernie_matching/evaluate.py --test_file "$DATA_DIR/sort/test_pairwise.csv" --device "$DEVICE" \
        --params_path "$OUTPUT_DIR/checkpoints/model_best" --results_file "$OUTPUT_DIR/auc.jsonl"
fi

# 6. export for Paddle Inference
$PYTHON ernie_matching/export_model.py --params_path "$OUTPUT_DIR/checkpoints/model_best" --output_path "$OUTPUT_DIR/exported"
