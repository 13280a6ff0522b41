# Shared by train_simcse.sh, train_inbatch_negative.sh and recall_evaluate.sh (sourced, not run).
PYTHON=${PYTHON:-python}
if [[ -x .venv/bin/python && -z "${VIRTUAL_ENV:-}" && "$PYTHON" == python ]]; then PYTHON=.venv/bin/python; fi
DATA_DIR=${DATA_DIR:-data/sample}
EMB=${EMB:-}
NPROC=${NPROC:-1}
DEVICE=${DEVICE:-cpu}
MODEL=${MODEL:-}

if [[ ! -f "$DATA_DIR/recall/train.csv" ]]; then
    echo "error: DATA_DIR=$DATA_DIR has no recall/train.csv (expected the data layout, see data/README.md)" >&2
    exit 2
fi
if [[ -z "$MODEL" ]]; then
    # a from-scratch mini ERNIE with a vocabulary from the data, built once and shared by every stage
    MODEL=output/bootstrap/$(basename "$DATA_DIR")/ernie
    if [[ ! -f "$MODEL/config.json" ]]; then
        "$PYTHON" -m ns_common.bootstrap --corpus_files "$DATA_DIR/recall/train_unsupervised.csv" "$DATA_DIR/recall/train.csv" \
            --model_type ernie --preset "${PRESET:-mini}" --save_dir "$MODEL"
    fi
fi

run_training() {  # run_training SCRIPT ARGS...: one process, or NPROC under paddle.distributed.launch
    local script=$1
    shift
    if [[ "$NPROC" -gt 1 ]]; then
        local devices=()
        [[ "$DEVICE" == gpu* ]] && devices=(--devices "$(seq -s, 0 $((NPROC - 1)))")
        "$PYTHON" -m paddle.distributed.launch --nproc_per_node "$NPROC" "${devices[@]}" \
            --log_dir "${LOG_DIR:-output/logs/$(basename "$script" .py)}" "$script" "$@"
    else
        "$PYTHON" "$script" "$@"
    fi
}
