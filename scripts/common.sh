# Sourced (not run) by the scripts in scripts/, from the repository root: which Python, DRY_RUN, the
# recipes, the offline bootstrap and multi-process training, written once.
#
# Environment every stage script reads (defaults in brackets):
#   PYTHON      the interpreter [an active venv's python, else the project's .venv/bin/python, else python]
#   DATA_DIR    the canonical data layout, see data/README.md [data/sample]
#   OUTPUT_DIR  everything a stage writes, in the pipeline's layout [output/stages/<data dir name>]
#   RECIPE      offline (models bootstrapped here), paddlenlp (PaddleNLP's pretrained models) or a .yml file
#               (recipes/README.md) [offline]
#   BUDGET      smoke, sample or full [by the corpus size, as the pipeline chooses]
#   PRESET      size of a bootstrapped model: mini, small or base [mini]
#   NPROC       training processes under paddle.distributed.launch [1]
#   DEVICE      cpu or gpu [cpu]
#   DRY_RUN=1   print the commands ("+ " and the command), run none

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -z "${VIRTUAL_ENV:-}" && -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
DATA_DIR=${DATA_DIR:-data/sample}
OUTPUT_DIR=${OUTPUT_DIR:-output/stages/$(basename "$DATA_DIR")}
RECIPE=${RECIPE:-offline}
BUDGET=${BUDGET:-}
PRESET=${PRESET:-mini}
NPROC=${NPROC:-1}
DEVICE=${DEVICE:-cpu}

dry_run() { [[ -n "${DRY_RUN:-}" && "$DRY_RUN" != 0 ]]; }

run() {  # run CMD...: runs it, or under DRY_RUN prints it
    if dry_run; then echo "+ ${*@Q}"; else "$@"; fi
}

require_data() {  # require_data FILE...: files of DATA_DIR the script reads
    local f
    for f in "$@"; do
        if [[ ! -f "$DATA_DIR/$f" ]]; then
            echo "error: DATA_DIR=$DATA_DIR has no $f (expected the canonical layout, see data/README.md)" >&2
            exit 2
        fi
    done
}

recipe_flags() {  # recipe_flags STAGE: the recipe's flags for STAGE (recipes/*.yml) into the array RECIPE_FLAGS
    local text
    text=$("$PYTHON" scripts/recipe.py flags "$1" --recipe "$RECIPE" --budget "$BUDGET" --data_dir "$DATA_DIR" --preset "$PRESET") || exit 2
    RECIPE_FLAGS=()
    if [[ -n "$text" ]]; then mapfile -t RECIPE_FLAGS <<< "$text"; fi
}

recipe_option() {  # recipe_option STAGE KEY: prints a setting of the recipe that is not a flag
    "$PYTHON" scripts/recipe.py option "$1" "$2" --recipe "$RECIPE" --budget "$BUDGET" --data_dir "$DATA_DIR" --preset "$PRESET" || exit 2
}

bootstrap_models() {  # from-scratch ERNIE + ERNIE-Gram on one vocabulary from the data, into $OUTPUT_DIR/bootstrap (once)
    if [[ ! -f "$OUTPUT_DIR/bootstrap/ernie/config.json" || ! -f "$OUTPUT_DIR/bootstrap/ernie-gram/config.json" ]]; then
        run "$PYTHON" ns_common/bootstrap.py --corpus_files "$DATA_DIR/recall/train_unsupervised.csv" "$DATA_DIR/pretrain/domain_corpus.txt" \
            --model_type both --preset "$PRESET" --save_dir "$OUTPUT_DIR/bootstrap"
    fi
}

domain_backbone() {  # domain_backbone ernie|ernie-gram: sets DOMAIN_BACKBONE to the domain-pretrained model in
    # $OUTPUT_DIR (run_domain_pretrain.sh) when there is one, else to the bootstrap (built first when missing)
    DOMAIN_BACKBONE=$OUTPUT_DIR/pretrain/$1/final
    if [[ ! -f "$DOMAIN_BACKBONE/config.json" ]]; then
        DOMAIN_BACKBONE=$OUTPUT_DIR/bootstrap/$1
        bootstrap_models
    fi
}

train() {  # train SCRIPT ARGS...: one process, or NPROC of them under paddle.distributed.launch
    local script=$1
    shift
    if [[ "$NPROC" -gt 1 ]]; then
        local devices=()
        if [[ "$DEVICE" == gpu* ]]; then devices=(--devices "$(seq -s, 0 $((NPROC - 1)))"); fi
        run "$PYTHON" -m paddle.distributed.launch --nproc_per_node "$NPROC" "${devices[@]}" \
            --log_dir "$OUTPUT_DIR/logs/$(basename "$script" .py)_ranks" "$script" "$@"
    else
        run "$PYTHON" "$script" "$@"
    fi
}
