#!/usr/bin/env bash
# The ERNIE-Gram reranker: the pipeline's stages rerank_data -> train_reranker -> export_reranker ->
# reranker_auc with the same commands (settings: recipes/*.yml), except that the recall whose lists are
# mined is BM25 here unless TRAIN_RECALL / DEV_RECALL give Milvus's (the pipeline mines hybrid recall).
# Flags after the script name go to ernie_matching/train_pairwise.py (they override the recipe's).
#
#   bash scripts/train_ernie_matching.sh                # after run_domain_pretrain.sh (else from a bootstrap)
#   DATA_DIR=data/csl bash scripts/train_ernie_matching.sh
#   TRAIN_RECALL=out/train_recall_hybrid.txt DEV_RECALL=out/dev_recall_hybrid.txt bash scripts/train_ernie_matching.sh
#   BACKBONE=ernie-gram-zh RECIPE=paddlenlp DEVICE=gpu NPROC=2 bash scripts/train_ernie_matching.sh   # needs internet + GPU
#
# Environment (defaults in brackets), besides those of scripts/common.sh (DATA_DIR, OUTPUT_DIR, RECIPE,
# BUDGET, PRESET, NPROC, DEVICE, DRY_RUN):
#   BACKBONE      [$OUTPUT_DIR/pretrain/ernie-gram/final if trained, else a from-scratch ERNIE-Gram
#                 bootstrapped into $OUTPUT_DIR/bootstrap/ernie-gram]
#   TRAIN_FILE    the training query<TAB>title pairs [$DATA_DIR/recall/train.csv; the pipeline: its 3/4 split]
#   TRAIN_RECALL  recall_result.txt of TRAIN_FILE's queries [BM25: $OUTPUT_DIR/recall/bm25_train.txt]
#   DEV_RECALL    recall_result.txt of recall/dev.csv's queries [BM25: $OUTPUT_DIR/recall/bm25_dev.txt]
#
# Results: $OUTPUT_DIR/reranker/model_final (checkpoint), $OUTPUT_DIR/export/reranker (Paddle Inference,
# what scripts/rerank_evaluate.sh, query.py --reranker_dir and the web service use), $OUTPUT_DIR/reranker_auc.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
require_data recall/train.csv recall/dev.csv recall/corpus.csv

if [[ -z "${BACKBONE:-}" ]]; then domain_backbone ernie-gram; BACKBONE=$DOMAIN_BACKBONE; fi
TRAIN_FILE=${TRAIN_FILE:-$DATA_DIR/recall/train.csv}
SORT=$OUTPUT_DIR/sort

# 1. what the recall returns for the training and the dev queries (BM25 on character uni+bigrams unless given)
if [[ -z "${TRAIN_RECALL:-}" ]]; then
    TRAIN_RECALL=$OUTPUT_DIR/recall/bm25_train.txt
    run "$PYTHON" ns_common/bm25.py --corpus_file "$DATA_DIR/recall/corpus.csv" --similar_text_pair_file "$TRAIN_FILE" \
        --tokens joined --recall_result_file "$TRAIN_RECALL"
fi
if [[ -z "${DEV_RECALL:-}" ]]; then
    DEV_RECALL=$OUTPUT_DIR/recall/bm25_dev.txt
    run "$PYTHON" ns_common/bm25.py --corpus_file "$DATA_DIR/recall/corpus.csv" --similar_text_pair_file "$DATA_DIR/recall/dev.csv" \
        --tokens joined --recall_result_file "$DEV_RECALL"
fi

# 2. training data: pseudo queries (title words), triples mined from the training queries' recall, and a
#    labelled file from the dev queries' recall (every negative) for the AUC
run "$PYTHON" ernie_matching/pseudo_pairs.py --corpus_file "$DATA_DIR/recall/corpus.csv" --output_file "$SORT/pseudo_pairwise.csv"
run "$PYTHON" ernie_matching/mine_pairwise.py --recall_result_file "$TRAIN_RECALL" --pairs_file "$TRAIN_FILE" \
    --output_train_file "$SORT/train_pairwise.csv"
run "$PYTHON" ernie_matching/mine_pairwise.py --recall_result_file "$DEV_RECALL" --pairs_file "$DATA_DIR/recall/dev.csv" \
    --output_labeled_file "$SORT/dev_pairwise.csv" --negative_ranks all

# 3. training: the recipe's flags, and its pseudo queries besides the mined triples when it says so
pseudo=()
if [[ "$(recipe_option train_reranker pseudo_queries)" == true ]]; then pseudo=("$SORT/pseudo_pairwise.csv"); fi
recipe_flags train_reranker
train ernie_matching/train_pairwise.py --train_file "$SORT/train_pairwise.csv" "${pseudo[@]}" --test_file "$SORT/dev_pairwise.csv" \
    --model_name_or_path "$BACKBONE" --save_dir "$OUTPUT_DIR/reranker" "${RECIPE_FLAGS[@]}" --device "$DEVICE" "$@"

# 4. export for Paddle Inference, then the AUC of the exported model on the dev file
run "$PYTHON" ernie_matching/export_model.py --params_path "$OUTPUT_DIR/reranker/model_final" --model_name_or_path "$BACKBONE" \
    --output_path "$OUTPUT_DIR/export/reranker"
run "$PYTHON" ernie_matching/evaluate.py --test_file "$SORT/dev_pairwise.csv" --scorer reranker --model_dir "$OUTPUT_DIR/export/reranker" \
    --results_file "$OUTPUT_DIR/reranker_auc.jsonl" --device "$DEVICE"
