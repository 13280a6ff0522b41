"""Searches the collection: one query, a stored document's neighbours, or a whole query file.

    # the default search path ("the system"): BM25's top 50 in Milvus, reordered by the learned ranking that
    # search/fit.py wrote (default --ranking_dir: `ranking` beside --model_dir, the pipeline's export/ranking)
    python -m search.query --model_dir output/pipeline/sample/export/recall \
        --reranker_dir output/pipeline/sample/export/reranker --query "中西方语言与文化的差异" --top_k 10
    # one leg alone: rank, id, score, text (--json for machine-readable output)
    python -m search.query --model_dir output/pipeline/sample/export/recall --query "中西方语言与文化的差异" --mode dense
    python -m search.query --query "语言 文化 差异" --mode bm25      # no model needed
    # two-stage: recall 50 by hybrid search, rerank them with the ERNIE-Gram reranker, show the best 10
    python -m search.query --model_dir output/pipeline/sample/export/recall --query "语言 文化 差异" --mode hybrid \
        --rerank --reranker_dir output/pipeline/sample/export/reranker --recall_num 50 --top_k 10
    # only some papers: a Milvus boolean expression over the record fields (a corpus of paper records, .jsonl)
    python -m search.query --query "语言 文化 差异" --filter 'category == "语言学" and year >= 2015' ...
    # more like a paper: its stored vector and its title (hybrid; vector only without BM25), itself left out; the
    # paper's own id (records with ids, the default key), or its corpus line (PaddleNLP's --search --index 18)
    python -m search.query --search_by_id sample-00018
    # batch: query<TAB>gold lines (or plain queries) -> recall_result.txt (query<TAB>doc<TAB>score,
    # --recall_num rows a query), scored right away when the file has gold docs; beside it recall_result.ids.txt,
    # the same rows with each paper's id instead of its text (query<TAB>id<TAB>score)
    python -m search.query --model_dir output/pipeline/sample/export/recall --mode hybrid \
        --query_file data/sample/recall/dev.csv --recall_result_file output/milvus/recall_result_hybrid.txt

Modes: system (default: the learned ranking over BM25's candidates, with the neural signals the fit kept),
dense (semantic vectors), bm25 (Milvus' BM25 on the text's character n-grams), hybrid (dense + bm25 fused by
Milvus' RRF). --rerank (plain reranking: the reranker's order replaces the recall's) goes with dense, bm25 and
hybrid.
"""

import argparse
import json
import os
import sys
import time

from ns_common.cli import check_outputs, entry_point, fail, model_inputs
from ns_common.errors import BadInputError
from ns_common.io import write_lines
from ns_common.utils import logger
from recall.milvus.config import add_config_args, database_input
from recall.milvus.data import read_queries
from recall.milvus.model import add_model_args, check_model_args
from search.system import CANDIDATES, MODES, SearchSystem, default_ranking_dir, needed_components


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("what to search (one of)")
    what.add_argument("--query", default=None, help="a query text")
    what.add_argument(
        "--search_by_id",
        "--index",
        dest="search_by_id",
        default=None,
        help="id of a stored paper (its corpus line, or its own id in a collection keyed by paper ids): papers like it",
    )
    what.add_argument(
        "--query_file", default=None, help="query<TAB>gold doc lines (e.g. recall/dev.csv) or one query a line"
    )
    parser.add_argument("--mode", choices=("system",) + MODES, default="system")
    parser.add_argument(
        "--filter",
        default=None,
        help="only papers this Milvus boolean expression holds for, e.g. 'category == \"工学\" and year >= 2015' or "
        "'array_contains(keywords, \"深度学习\")' (fields: paper_id, category, discipline, year, keywords)",
    )
    parser.add_argument(
        "--ranking_dir",
        default=None,
        help="the system's fitted ranking, search/fit.py's output (default: `ranking` beside --model_dir)",
    )
    parser.add_argument("--top_k", type=int, default=10, help="hits shown for --query / --search_by_id")
    parser.add_argument("--recall_num", type=int, default=50, help="hits written per query of --query_file")
    parser.add_argument(
        "--recall_result_file", default="output/milvus/recall_result.txt", help="output of --query_file"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rerank = parser.add_argument_group("second stage: ERNIE-Gram reranking of the recalled hits")
    rerank.add_argument(
        "--rerank", action="store_true", help="recall --recall_num hits, rerank them, keep --top_k (batch mode: all)"
    )
    rerank.add_argument(
        "--reranker_dir",
        default=None,
        help="reranker exported by ernie_matching/export_model.py, or a train_pairwise.py checkpoint directory",
    )
    parser.add_argument(
        "--allow_model_mismatch",
        action="store_true",
        help="search a collection whose vectors another model computed (refused by default: the scores mean nothing)",
    )
    add_model_args(parser, batch_size=64)
    add_config_args(parser, skip=("batch_size",))
    args = parser.parse_args(argv)
    given = [name for name in ("query", "search_by_id", "query_file") if getattr(args, name) is not None]
    if len(given) != 1:
        fail("give exactly one of --query, --search_by_id, --query_file")
    if args.query is not None and not args.query.strip():
        fail("--query is empty: give some text to search for")
    if args.query_file is not None and not os.path.isfile(args.query_file):
        fail(f"--query_file {args.query_file}: file not found")
    if args.top_k < 1 or args.recall_num < 1:
        fail("--top_k and --recall_num must be positive")
    if args.rerank and not (args.reranker_dir and os.path.isdir(args.reranker_dir)):
        fail(
            f"--rerank needs --reranker_dir (an exported reranker or a checkpoint directory); got {args.reranker_dir!r}"
        )
    if args.rerank and args.search_by_id is not None:
        fail("--rerank reranks a text query: use it with --query or --query_file")
    if args.rerank and args.mode == "system":
        fail(
            "--mode system already ranks with the neural signals its fit kept: use --rerank with --mode dense, bm25 or hybrid"
        )
    if args.mode == "system" and args.search_by_id is None:
        args.ranking_dir = args.ranking_dir or default_ranking_dir(args.model_dir)
        if not args.ranking_dir:
            fail(
                "--mode system needs the fitted ranking: --ranking_dir (search/fit.py's output), or --model_dir with it beside "
                "it as `ranking`; or choose a leg with --mode dense|bm25|hybrid"
            )
        if args.recall_num > CANDIDATES:
            fail(
                f"--recall_num {args.recall_num}: the system ranks BM25's top {CANDIDATES} a query (at most {CANDIDATES})"
            )
    if args.query_file is not None:  # the database, models and ranking are inputs too (the ranking's default known)
        check_outputs(
            files=[("recall_result_file", args.recall_result_file), ("recall_result_file", ids_file(args))],
            inputs=[("query_file", args.query_file), *database_input(args), *model_inputs(args)],
        )
    if args.reranker_dir and not os.path.isdir(args.reranker_dir):
        fail(f"--reranker_dir {args.reranker_dir}: no such directory")
    if "encoder" in needed_components(search_mode(args), None, args.rerank) or (args.model_dir or args.params_path):
        check_model_args(args)
    return args


def search_mode(args) -> str:
    """The mode needed_components knows: "by_id" for --search_by_id (the stored vector: no model), else --mode."""
    return "by_id" if args.search_by_id is not None else args.mode


def print_hits(title, hits, as_json) -> None:
    if as_json:
        print(
            json.dumps(
                {**title, "hits": [{"rank": r, **h.to_dict()} for r, h in enumerate(hits, 1)]}, ensure_ascii=False
            )
        )
        return
    print(" ".join(f"{k}: {v}" for k, v in title.items()))
    with_fields = any(hit.fields.get("category") for hit in hits)  # a corpus of paper records
    print("rank\tid\tscore\ttext" + ("\tcategory" if with_fields else "") + "\tmatched")
    for rank, hit in enumerate(hits, 1):
        category = f"\t{hit.fields.get('category', '')}" if with_fields else ""
        print(f"{rank}\t{hit.id}\t{hit.score:.4f}\t{hit.text}{category}\t{' '.join(hit.matched)}")


def load_query_file(path) -> tuple:
    """(queries, golds or None) of --query_file; BadInputError when it holds no query (read before any model loads)."""
    queries, golds = read_queries(path)
    if not queries:
        raise BadInputError(
            f"--query_file {path}: no queries (empty, not UTF-8 text, or no line of the query<TAB>gold shape)"
        )
    return queries, golds


def ids_file(args) -> str:
    """Where --query_file's papers are written by id, beside --recall_result_file (ns_common.io.recall_ids_file)."""
    from ns_common.io import recall_ids_file

    return recall_ids_file(args.recall_result_file)


def run_query_file(system, args, loaded=None) -> dict | None:
    """Writes recall_result.txt for every query of the file; returns the metrics when golds are given. loaded: the
    file's (queries, golds) when already read (load_query_file)."""
    from ns_common.evaluate import recall_metrics, report

    queries, golds = loaded or load_query_file(args.query_file)
    if golds is not None:  # each distinct query once, all its gold docs (the recall stage's convention)
        gold = {}
        for q, g in zip(queries, golds):
            gold.setdefault(q, set()).add(g)
        queries = list(gold)
    start = time.time()
    results = system.search(queries, top_k=args.recall_num, filter=args.filter, candidates=args.recall_num)
    seconds = time.time() - start
    if args.rerank:
        log_reranking(system)
    n_rows = write_lines(
        args.recall_result_file,
        ((q, hit.text, f"{hit.score:.6f}") for q, hits in zip(queries, results) for hit in hits),
    )
    # its companion, row for row: the papers by id (their own in a collection keyed by paper ids, else corpus lines)
    write_lines(ids_file(args), ((q, hit.id, f"{hit.score:.6f}") for q, hits in zip(queries, results) for hit in hits))
    logger.info(
        f"{len(queries)} queries ({args.mode}) in {seconds:.1f}s = {len(queries) / max(seconds, 1e-9):.1f} queries/s: "
        f"{n_rows} rows -> {args.recall_result_file} (ids: {ids_file(args)})"
    )
    if golds is None:
        return None
    ranked = {q: [hit.text for hit in hits] for q, hits in zip(queries, results)}
    metrics = recall_metrics(queries, gold, ranked, args.recall_num)
    report(f"milvus-{args.mode}" + ("+rerank" if args.rerank else ""), metrics)
    return metrics


def log_reranking(system) -> None:
    logger.info(f"reranked {system.reranker.pairs_scored} pairs at {system.reranker.pairs_per_s:.0f} pairs/s")


@entry_point
def main(argv=None):
    args = parse_args(argv)
    loaded = load_query_file(args.query_file) if args.query_file is not None else None
    # a SearchError (a BadInputError: empty query, unknown id) is one line and exit code 2 (entry_point)
    with SearchSystem.from_args(args, mode=search_mode(args), rerank=args.rerank) as system:
        if args.query_file is not None:
            return run_query_file(system, args, loaded)
        if args.search_by_id is not None:
            hits = system.more_like_this(args.search_by_id, top_k=args.top_k, filter=args.filter)
            title = {"more_like": hits.source["id"], "title": hits.source["text"], "mode": hits.mode}
            print_hits(title, hits, args.json)
        else:
            hits = system.search(
                args.query, top_k=args.top_k, filter=args.filter, explain=args.json, candidates=args.recall_num
            )
            if args.rerank:
                log_reranking(system)
            print_hits({"query": args.query, "mode": args.mode + (" + rerank" if args.rerank else "")}, hits, args.json)
    sys.stdout.flush()
    return hits


if __name__ == "__main__":
    main()
