#!/usr/bin/env bash
# Domain-adaptive pretraining, end to end: (bootstrap a from-scratch model) -> build the pretraining
# data -> train. Flags after the script name go to domain_pretrain/run_pretrain.py.
#
#   bash scripts/run_domain_pretrain.sh --max_steps 200                  # the bundled sample, a few minutes
#   CORPUS=data/csl/pretrain/domain_corpus.txt OUTPUT_DIR=output/domain_pretrain_csl \
#       bash scripts/run_domain_pretrain.sh                              # CSL, ~15 minutes on 2 CPU cores
#   MODEL=ernie-1.0 DEVICE=gpu NPROC=2 bash scripts/run_domain_pretrain.sh --micro_batch_size 64
#
# Environment (defaults in brackets):
#   CORPUS      raw domain text, one document a line [data/sample/pretrain/domain_corpus.txt]
#   OUTPUT_DIR  everything goes here [output/domain_pretrain]
#   MODEL       a PaddleNLP name or a save_pretrained directory; empty: bootstrap one from CORPUS []
#   MODEL_TYPE  ernie, ernie-gram or both (both: one vocabulary, two models) [ernie]
#   PRESET      size of a bootstrapped model: mini, small or base [mini]
#   NPROC       processes (data parallel under paddle.distributed.launch) [1]
#   DEVICE      cpu or gpu [cpu]
#   WORKERS     tokenising processes for the data tools [1]
#
# Results: $OUTPUT_DIR/<model type>/final/ (pass it as --model_name_or_path to simcse/ or
# ernie_matching/) and $OUTPUT_DIR/<model type>/pretrain_summary.json. Re-running resumes.
set -euo pipefail
cd "$(dirname "$0")/.."

CORPUS=${CORPUS:-data/sample/pretrain/domain_corpus.txt}
OUTPUT_DIR=${OUTPUT_DIR:-output/domain_pretrain}
MODEL=${MODEL:-}
MODEL_TYPE=${MODEL_TYPE:-ernie}
PRESET=${PRESET:-mini}
NPROC=${NPROC:-1}
DEVICE=${DEVICE:-cpu}
WORKERS=${WORKERS:-1}
PYTHON=${PYTHON:-python}

if [[ ! -f "$CORPUS" ]]; then
    echo "error: CORPUS not found: $CORPUS" >&2
    exit 2
fi
case "$MODEL_TYPE" in
    ernie | ernie-gram) TYPES=("$MODEL_TYPE") ;;
    both) TYPES=(ernie ernie-gram) ;;
    *) echo "error: MODEL_TYPE must be ernie, ernie-gram or both (got $MODEL_TYPE)" >&2; exit 2 ;;
esac
if [[ -n "$MODEL" && "$MODEL_TYPE" == both ]]; then
    echo "error: MODEL_TYPE=both bootstraps two models; with MODEL set, give its type (ernie or ernie-gram)" >&2
    exit 2
fi

for TYPE in "${TYPES[@]}"; do
    MODEL_DIR=${MODEL:-$OUTPUT_DIR/bootstrap/$TYPE}
    # 1. a from-scratch model when none is given (vocabulary from the corpus, random weights; the
    #    vocabulary is deterministic, so a bootstrapped ERNIE and ERNIE-Gram share it)
    if [[ -z "$MODEL" && ! -f "$MODEL_DIR/config.json" ]]; then
        $PYTHON -m ns_common.bootstrap --corpus_files "$CORPUS" --model_type "$TYPE" --preset "$PRESET" --save_dir "$MODEL_DIR"
    fi
    # 2. token ids with whole-word boundaries, kept between runs (training refuses data built with
    #    another vocabulary)
    DATA_PREFIX=$OUTPUT_DIR/data/$([[ -z "$MODEL" ]] && echo bootstrap || basename "$MODEL")
    if [[ ! -f "${DATA_PREFIX}_idx.npz" ]]; then
        $PYTHON domain_pretrain/data_tools/create_pretraining_data.py --input_path "$CORPUS" \
            --model_name_or_path "$MODEL_DIR" --output_prefix "$DATA_PREFIX" --workers "$WORKERS"
    fi
    # 3. pretraining (resumes from $OUTPUT_DIR/$TYPE/model_last when present)
    TRAIN=(domain_pretrain/run_pretrain.py --model_type "$TYPE" --model_name_or_path "$MODEL_DIR"
        --input_prefix "$DATA_PREFIX" --output_dir "$OUTPUT_DIR/$TYPE" --device "$DEVICE" "$@")
    if [[ "$NPROC" -gt 1 ]]; then
        $PYTHON -m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "$OUTPUT_DIR/$TYPE/logs" "${TRAIN[@]}"
    else
        $PYTHON "${TRAIN[@]}"
    fi
done
