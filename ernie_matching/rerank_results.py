"""Reranks every query's list of a recall_result.txt and writes a reranked recall_result.txt.

    python ernie_matching/rerank_results.py --model_dir output/ernie_matching \
        --recall_result_file recall_result_dir/recall_result.txt --recall_num 50 \
        --output_file recall_result_dir/recall_result_reranked.txt \
        --similar_text_pair_file data/sample/recall/dev.csv

Input and output have the recall stage's format (`query<TAB>doc<TAB>score`, best first); in the output
the score is the reranker's probability and each query keeps its first --recall_num candidates
(--top_k of them when given). With --similar_text_pair_file it also prints Recall@K / MRR@10 before
and after reranking (the same numbers ns_common/evaluate.py gives for the two files).

--fuse_recall_rank K (beyond PaddleNLP, off by default) orders each list by reciprocal-rank fusion of the
reranker's ranks and the recall ranks, sum of 1 / (K + rank), and writes that sum as the score: the
recall's own evidence (BM25's IDF above all) is kept where the reranker is unsure. K = 60 is the usual
RRF constant, and Milvus' RRFRanker default. With --fused_output_file as well, one run writes both orders from
the same reranker scores: --output_file the reranker's, --fused_output_file the fused one (the pipeline's
rerank_eval: each list reranked once, not once per order).
"""

import argparse
import os

from ernie_matching.reranker import Reranker, add_reranker_args, check_reranker_args
from ns_common.cli import check_outputs, entry_point, fail, model_inputs
from ns_common.errors import BadInputError
from ns_common.evaluate import recall_metrics, report
from ns_common.io import DataFileError, check_file, read_recall_result, read_similar_pairs, write_lines
from ns_common.utils import Timer, logger, quiet_paddlenlp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--recall_result_file", required=True, help="query<TAB>doc<TAB>score, best first (recall.py, milvus batch mode)"
    )
    parser.add_argument(
        "--output_file", default=None, help="reranked result (default: <input>_reranked.txt next to the input)"
    )
    parser.add_argument(
        "--recall_num", type=int, default=50, help="candidates a query to rerank (the first N of its list; 0: all)"
    )
    parser.add_argument("--top_k", type=int, default=0, help="rows a query to write after reranking (0: all reranked)")
    parser.add_argument(
        "--similar_text_pair_file", default=None, help="query<TAB>gold doc: print Recall@K/MRR@10 before and after"
    )
    parser.add_argument(
        "--result_file", default=None, help="with --similar_text_pair_file, append both table lines to this file"
    )
    parser.add_argument(
        "--fuse_recall_rank",
        type=int,
        default=0,
        metavar="K",
        help="order by reciprocal-rank fusion of reranker and recall ranks, 1/(K+rank) summed (0: the reranker's order alone)",
    )
    parser.add_argument(
        "--fused_output_file",
        default=None,
        help="with --fuse_recall_rank: the fused order goes here and --output_file keeps the reranker's order "
        "(both from one reranking)",
    )
    add_reranker_args(parser, batch_size=128)
    args = parser.parse_args(argv)
    check_reranker_args(args)
    if args.fused_output_file and not args.fuse_recall_rank:
        fail("--fused_output_file needs --fuse_recall_rank K (the fusion's constant)")
    if args.recall_num < 0 or args.top_k < 0 or args.fuse_recall_rank < 0:
        fail("--recall_num, --top_k and --fuse_recall_rank must be >= 0")
    if args.recall_num and args.top_k > args.recall_num:
        fail(f"--top_k {args.top_k} > --recall_num {args.recall_num}: cannot return more than it reranks")
    for flag in ("recall_result_file", "similar_text_pair_file"):
        try:
            check_file(getattr(args, flag), f"--{flag}") if getattr(args, flag) else None
        except DataFileError as e:
            fail(str(e))
    if not args.output_file:
        args.output_file = os.path.splitext(args.recall_result_file)[0] + "_reranked.txt"
    if os.path.abspath(args.output_file) == os.path.abspath(args.recall_result_file):
        fail("--output_file must differ from --recall_result_file (the recall result is kept for comparison)")
    if args.fused_output_file and os.path.abspath(args.fused_output_file) == os.path.abspath(args.output_file):
        fail("--fused_output_file must differ from --output_file (each holds one order)")
    check_outputs(
        files=[
            ("output_file", args.output_file),
            ("fused_output_file", args.fused_output_file),
            ("result_file", args.result_file),
        ],
        inputs=[
            ("recall_result_file", args.recall_result_file),
            ("similar_text_pair_file", args.similar_text_pair_file),
            *model_inputs(args),
        ],
    )
    return args


def fuse_ranks(recall_docs, reranked_docs, k):
    """Reciprocal-rank fusion of two orderings of the same documents: [(doc, score)], best first; ties
    keep the reranker's order."""
    recall_rank = {doc: rank for rank, doc in enumerate(recall_docs, 1)}
    fused = [(doc, 1.0 / (k + rank) + 1.0 / (k + recall_rank[doc])) for rank, doc in enumerate(reranked_docs, 1)]
    return sorted(fused, key=lambda pair: -pair[1])


def result_rows(reranked):
    """{query: [(doc, score)]} -> recall_result.txt rows."""
    return ((query, doc, f"{score:.6f}") for query, docs in reranked.items() for doc, score in docs)


@entry_point
def main(argv=None):
    args = parse_args(argv)
    quiet_paddlenlp()
    recalled = read_recall_result(args.recall_result_file)
    if not recalled:
        fail(f"--recall_result_file {args.recall_result_file}: no query<TAB>doc<TAB>score rows")
    candidates = {query: [doc for doc, _ in rows][: args.recall_num or None] for query, rows in recalled.items()}
    gold_pairs = None
    if args.similar_text_pair_file:  # checked before any work: no output written, then a failure
        gold_pairs = read_similar_pairs(args.similar_text_pair_file)
        if not gold_pairs[0]:
            raise BadInputError(f"--similar_text_pair_file {args.similar_text_pair_file}: no valid query<TAB>doc pairs")
    reranker = Reranker.from_args(args)

    from tqdm import tqdm

    timer = Timer()
    by_reranker, fused = {}, {}
    for query, docs in tqdm(candidates.items(), desc="reranking", unit="query"):
        ordered = [(c["text"], c["rerank_score"]) for c in reranker.rerank(query, [{"text": doc} for doc in docs])]
        by_reranker[query] = ordered[: args.top_k or None]
        if args.fuse_recall_rank:
            fused[query] = fuse_ranks(docs, [doc for doc, _ in ordered], args.fuse_recall_rank)[: args.top_k or None]
    # --fuse_recall_rank alone: the fused order is the output; with --fused_output_file it goes there instead
    reranked = fused if args.fuse_recall_rank and not args.fused_output_file else by_reranker
    n_rows = write_lines(args.output_file, result_rows(reranked))
    if args.fused_output_file:
        write_lines(args.fused_output_file, result_rows(fused))
    cache = reranker.encoder
    logger.info(
        f"reranked {len(reranked)} queries ({reranker.pairs_scored} pairs) in {timer.seconds:.1f}s: "
        f"{reranker.pairs_per_s:.0f} pairs/s, tokenisation cache hits {100.0 * cache.hits / max(cache.hits + cache.misses, 1):.0f}%; "
        f"{n_rows} rows -> {args.output_file}"
    )

    if args.similar_text_pair_file:
        queries, gold = gold_pairs
        before = recall_metrics(queries, gold, candidates, args.recall_num or None)
        report(f"recall   {args.recall_result_file}", before, args.result_file)
        outputs = [(args.output_file, reranked)] + ([(args.fused_output_file, fused)] if args.fused_output_file else [])
        for path, lists in outputs:
            after = recall_metrics(
                queries, gold, {q: [doc for doc, _ in docs] for q, docs in lists.items()}, args.recall_num or None
            )
            report(f"reranked {path}", after, args.result_file)
    return reranked


if __name__ == "__main__":
    main()
