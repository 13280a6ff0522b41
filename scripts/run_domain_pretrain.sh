#!/usr/bin/env bash
# Domain-adaptive pretraining, the pipeline's stages bootstrap -> pretrain_data -> pretrain_ernie ->
# pretrain_ernie_gram with the same commands (settings: recipes/*.yml). Flags after the script name go to
# domain_pretrain/run_pretrain.py (they override the recipe's).
#
#   bash scripts/run_domain_pretrain.sh                                  # bundled sample: bootstrap both models, train both
#   DATA_DIR=data/csl bash scripts/run_domain_pretrain.sh                # CSL (data/prepare_csl.py output), ~25 min on 2 cores
#   MODEL_TYPE=ernie bash scripts/run_domain_pretrain.sh --max_steps 50  # the recall backbone only, fewer steps
#   MODEL=ernie-1.0 MODEL_TYPE=ernie RECIPE=paddlenlp DEVICE=gpu NPROC=2 bash scripts/run_domain_pretrain.sh   # needs internet + GPU
#
# Environment (defaults in brackets), besides those of scripts/common.sh (DATA_DIR, OUTPUT_DIR, RECIPE,
# BUDGET, PRESET, NPROC, DEVICE, DRY_RUN):
#   MODEL       a PaddleNLP name or save_pretrained directory; empty: ERNIE and ERNIE-Gram bootstrapped from
#               the data on one vocabulary, into $OUTPUT_DIR/bootstrap []
#   MODEL_TYPE  ernie, ernie-gram or both [both; with MODEL: give its type]
#   WORKERS     tokenising processes for the data tools [1]
#
# Results: $OUTPUT_DIR/pretrain/<model type>/final/ (the next stages' --model_name_or_path) and
# pretrain_summary.json next to it. Re-running resumes from model_last.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
require_data pretrain/domain_corpus.txt recall/train_unsupervised.csv

MODEL=${MODEL:-}
MODEL_TYPE=${MODEL_TYPE:-both}
case "$MODEL_TYPE" in
    ernie | ernie-gram) TYPES=("$MODEL_TYPE") ;;
    both) TYPES=(ernie ernie-gram) ;;
    *) echo "error: MODEL_TYPE must be ernie, ernie-gram or both (got $MODEL_TYPE)" >&2; exit 2 ;;
esac
if [[ -n "$MODEL" && "$MODEL_TYPE" == both ]]; then
    echo "error: MODEL_TYPE=both bootstraps two models; with MODEL set, give its type (ernie or ernie-gram)" >&2
    exit 2
fi

# 1. models to start from: MODEL, or from-scratch ones whose vocabulary comes from the data
if [[ -z "$MODEL" ]]; then bootstrap_models; fi

BUILT=  # the data set built by this run (the bootstrapped models share one)
for TYPE in "${TYPES[@]}"; do
    MODEL_DIR=${MODEL:-$OUTPUT_DIR/bootstrap/$TYPE}
    # 2. token ids with whole-word boundaries, kept between runs (training refuses data built with another
    #    vocabulary). The bootstrapped models share one vocabulary, hence one data set (built with ERNIE's).
    DATA_PREFIX=$OUTPUT_DIR/pretrain_data/$([[ -z "$MODEL" ]] && echo ernie || echo "$TYPE")
    if [[ ! -f "${DATA_PREFIX}_idx.npz" && "$BUILT" != "$DATA_PREFIX" ]]; then
        run "$PYTHON" domain_pretrain/data_tools/create_pretraining_data.py --input_path "$DATA_DIR/pretrain/domain_corpus.txt" \
            --model_name_or_path "${MODEL:-$OUTPUT_DIR/bootstrap/ernie}" --output_prefix "$DATA_PREFIX" ${WORKERS:+--workers "$WORKERS"}
        BUILT=$DATA_PREFIX
    fi
    # 3. pretraining (resumes from $OUTPUT_DIR/pretrain/$TYPE/model_last when present)
    recipe_flags "pretrain_${TYPE//-/_}"
    train domain_pretrain/run_pretrain.py --model_type "$TYPE" --model_name_or_path "$MODEL_DIR" --input_prefix "$DATA_PREFIX" \
        --output_dir "$OUTPUT_DIR/pretrain/$TYPE" "${RECIPE_FLAGS[@]}" --device "$DEVICE" "$@"
done
