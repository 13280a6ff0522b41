#!/usr/bin/env bash
# Are the query results of this working tree byte-identical to those of another revision? Runs search/query.py of
# both over one pipeline output (the same models, ranking and Milvus Lite database) in every mode, writes each
# recall file and printed answer, and compares them byte for byte (issue 29: a refactoring of the search path must
# not change a result).
#
#   bash scripts/same_query_results.sh 953b952                               # output/pipeline/sample, its dev.csv
#   bash scripts/same_query_results.sh 953b952 output/pipeline/csl data/csl/recall/dev.csv
#
# Arguments: REVISION (the other side: a commit, branch or tag), OUTPUT_DIR [output/pipeline/sample] (what
# scripts/pipeline.py wrote: export/recall, export/reranker, export/ranking, milvus/neural_search.db), QUERY_FILE
# [data/sample/recall/dev.csv]; environment PAPER [sample-00018]: the paper more-like-this starts from (its own id in a
# collection of records with ids, the default key; its corpus line, e.g. 18, in one keyed by lines). The other revision is checked out with `git archive` into a temporary directory,
# removed at the end; the outputs go to $WORK [a new temporary directory], which the script prints. Exit 0 when
# every output is the same, 1 when one differs (named), 2 for bad arguments.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh  # PYTHON

REVISION=${1:?give the revision to compare with (e.g. 953b952)}
OUTPUT=$(realpath "${2:-output/pipeline/sample}")
QUERIES=$(realpath "${3:-data/sample/recall/dev.csv}")
WORK=${WORK:-$(mktemp -d)}
PY="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute, the venv's link kept
for path in "$OUTPUT/export/recall" "$OUTPUT/export/ranking" "$OUTPUT/milvus/neural_search.db" "$QUERIES"; do
  [ -e "$path" ] || { echo "error: $path not found: run the pipeline first (make run)" >&2; exit 2; }
done
OTHER=$(mktemp -d)
trap 'rm -rf "$OTHER"' EXIT
git archive "$REVISION" | tar -x -C "$OTHER" || { echo "error: no revision $REVISION" >&2; exit 2; }

models=(--model_dir "$OUTPUT/export/recall" --uri "$OUTPUT/milvus/neural_search.db")
rerank=()
[ -d "$OUTPUT/export/reranker" ] && rerank=(--reranker_dir "$OUTPUT/export/reranker")
run() {  # run <side> <code dir> <name> <query.py flags...>
  local side=$1 code=$2 name=$3
  shift 3
  mkdir -p "$WORK/$side"
  (cd "$code" && "$PY" -m search.query "${models[@]}" "$@" >"$WORK/$side/$name.out" 2>"$WORK/$side/$name.log")
  local rc=$?
  echo "exit $rc" >>"$WORK/$side/$name.out"
  if [ $rc -ne 0 ]; then
    echo "FAILED    $side $name (exit $rc): $(tail -n 1 "$WORK/$side/$name.log")"
    failed=1
  fi
}
failed=0
for side in other this; do
  code=$OTHER
  [ "$side" = this ] && code=$PWD
  echo "== $side: $( [ "$side" = this ] && echo "working tree" || echo "$REVISION")"
  run "$side" "$code" system "${rerank[@]}" --query_file "$QUERIES" --recall_result_file "$WORK/$side/system.txt"
  for mode in dense bm25 hybrid; do
    run "$side" "$code" "$mode" --mode "$mode" --query_file "$QUERIES" --recall_result_file "$WORK/$side/$mode.txt"
  done
  if [ ${#rerank[@]} -gt 0 ]; then
    run "$side" "$code" hybrid_rerank --mode hybrid --rerank "${rerank[@]}" --recall_num 20 --query_file "$QUERIES" \
      --recall_result_file "$WORK/$side/hybrid_rerank.txt"
  fi
  run "$side" "$code" one_query "${rerank[@]}" --query "$(head -n 1 "$QUERIES" | cut -f 1)" --json
  run "$side" "$code" more_like_this --search_by_id "${PAPER:-sample-00018}" --json
done
status=$failed
for file in "$WORK"/other/*.txt "$WORK"/other/*.out; do
  name=$(basename "$file")
  if cmp -s "$file" "$WORK/this/$name"; then
    echo "same      $name ($(wc -l <"$file") lines)"
  else
    echo "DIFFERENT $name"
    status=1
  fi
done
echo "outputs in $WORK"
exit $status
