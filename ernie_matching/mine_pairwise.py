"""Mines the reranker's training data from what the recall actually returns (hard negatives).

    python ernie_matching/mine_pairwise.py \
        --recall_result_file output/recall/train/recall_result.txt \
        --pairs_file data/csl/recall/train.csv \
        --output_train_file data/csl/sort_mined/train_pairwise.csv \
        --output_labeled_file data/csl/sort_mined/dev_pairwise.csv --labeled_ratio 0.1

For each labelled query (`query<TAB>gold_title` in --pairs_file) the gold title is the positive and
negatives are picked from the recalled titles by the project's one rule (ns_common/negatives.py):
never the gold or a title equal to it (case and whitespace aside); only the titles ranked and scored
below the gold (--negative_ranks all: the whole list), or the whole list from the top when the gold was
not recalled; --neg_per_query drawn (seeded) among the first --neg_pool eligible titles.
The queries are split (seeded, disjoint) between
  --output_train_file    query<TAB>title<TAB>neg_title, one row per negative (train_pairwise.csv)
  --output_labeled_file  query<TAB>title<TAB>label, the gold (1) and its negatives (0) (dev/test_pairwise.csv)
by --labeled_ratio (default: 0 with a train file only, 1 with a labelled file only).
"""

import argparse
import os
import random

from ns_common.cli import check_outputs, entry_point, fail
from ns_common.errors import BadInputError
from ns_common.io import DataFileError, check_file, read_recall_result, read_similar_pairs, write_lines
from ns_common.negatives import mine_negatives
from ns_common.utils import logger


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--recall_result_file", required=True, help="query<TAB>doc<TAB>score, recall_num rows a query, best first"
    )
    parser.add_argument(
        "--pairs_file", required=True, help="labelled pairs query<TAB>gold_title (recall/train.csv, dev.csv)"
    )
    parser.add_argument(
        "--output_train_file", default=None, help="pairwise triples with header query, title, neg_title"
    )
    parser.add_argument("--output_labeled_file", default=None, help="labelled pairs with header query, title, label")
    parser.add_argument(
        "--labeled_ratio", type=float, default=None, help="share of the queries written to --output_labeled_file"
    )
    parser.add_argument("--neg_per_query", type=int, default=4, help="negatives sampled per query")
    parser.add_argument(
        "--neg_pool", type=int, default=20, help="sample among this many recalled titles below the gold"
    )
    parser.add_argument(
        "--negative_ranks",
        choices=("below_gold", "all"),
        default="below_gold",
        help="below_gold: only titles ranked after the gold; all: also those the recall put above it",
    )
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    check_outputs(
        files=[("output_train_file", args.output_train_file), ("output_labeled_file", args.output_labeled_file)],
        inputs=[("recall_result_file", args.recall_result_file), ("pairs_file", args.pairs_file)],
    )
    outputs = [os.path.realpath(path) for path in (args.output_train_file, args.output_labeled_file) if path]
    if len(outputs) == 2 and outputs[0] == outputs[1]:
        raise BadInputError("--output_train_file and --output_labeled_file are the same file: give two paths")
    if not args.output_train_file and not args.output_labeled_file:
        fail("give --output_train_file and/or --output_labeled_file")
    if args.labeled_ratio is None:
        args.labeled_ratio = 0.0 if not args.output_labeled_file else 1.0 if not args.output_train_file else 0.1
    if not 0.0 <= args.labeled_ratio <= 1.0:
        fail(f"--labeled_ratio {args.labeled_ratio}: expected a share between 0 and 1")
    if args.labeled_ratio > 0 and not args.output_labeled_file:
        fail(f"--labeled_ratio {args.labeled_ratio} needs --output_labeled_file")
    if args.labeled_ratio < 1 and not args.output_train_file:
        fail(f"--labeled_ratio {args.labeled_ratio} leaves queries for training: give --output_train_file")
    if args.neg_per_query < 1 or args.neg_pool < args.neg_per_query:
        fail(f"--neg_per_query {args.neg_per_query} must be >= 1 and <= --neg_pool {args.neg_pool}")
    return args


def sample_negatives(ranked, golds, n_neg, pool, negative_ranks, rng):
    """Negatives for one query from its recall rows [(title, score)], best first. Returns (negatives, gold rank or None)."""
    titles = [doc for doc, _ in ranked]
    chosen, gold_rank = mine_negatives(
        titles,
        golds,
        n_neg,
        scores=[score for _, score in ranked],
        below_gold=negative_ranks == "below_gold",
        pool=pool,
        rng=rng,
    )
    return [titles[i] for i in chosen], gold_rank


@entry_point
def main(argv=None):
    args = parse_args(argv)
    try:
        check_file(args.recall_result_file, "--recall_result_file")
        check_file(args.pairs_file, "--pairs_file")
        queries, golds_of = read_similar_pairs(args.pairs_file)
        recalled = read_recall_result(args.recall_result_file)
    except DataFileError as e:
        fail(str(e))

    missing = [q for q in queries if q not in recalled]
    if len(missing) == len(queries):
        fail(f"no query of {args.pairs_file} appears in {args.recall_result_file}: were they recalled for these pairs?")
    if missing:
        logger.warning(
            f"{len(missing)} of {len(queries)} queries have no recall result and are skipped, e.g. {missing[0]!r}"
        )
    queries = [q for q in queries if q in recalled]
    rng = random.Random(args.seed)
    order = queries[:]
    rng.shuffle(order)
    labeled_queries = set(order[: round(args.labeled_ratio * len(order))])

    train_rows, labeled_rows, gold_ranks, no_negatives = [], [], [], 0
    for query in queries:  # file order, so the output reads like the input
        negatives, gold_rank = sample_negatives(
            recalled[query], golds_of[query], args.neg_per_query, args.neg_pool, args.negative_ranks, rng
        )
        gold_ranks.append(gold_rank)
        if not negatives:
            no_negatives += 1
            continue
        for gold in sorted(golds_of[query]):
            if query in labeled_queries:
                labeled_rows.append((query, gold, 1))
                labeled_rows.extend((query, neg, 0) for neg in negatives)
            else:
                train_rows.extend((query, gold, neg) for neg in negatives)

    found = [r for r in gold_ranks if r is not None]
    logger.info(
        f"{len(queries)} queries: gold recalled for {len(found)} ({100.0 * len(found) / len(queries):.1f}%, "
        f"at rank 1 for {sum(r == 0 for r in found)}); {no_negatives} without any negative skipped"
    )
    if args.output_train_file:
        n = write_lines(args.output_train_file, train_rows, header=("query", "title", "neg_title"))
        logger.info(f"wrote {n} triples ({len(queries) - len(labeled_queries)} queries) to {args.output_train_file}")
    if args.output_labeled_file:
        n = write_lines(args.output_labeled_file, labeled_rows, header=("query", "title", "label"))
        n_pos = sum(r[2] for r in labeled_rows)
        logger.info(
            f"wrote {n} labelled pairs ({n_pos} positive, {n - n_pos} negative; {len(labeled_queries)} queries) to {args.output_labeled_file}"  # noqa: E501
        )


if __name__ == "__main__":
    main()
