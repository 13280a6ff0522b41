"""Splits the labelled training pairs into the part the neural models learn from and a held-out "fit" part
on which the search system's fusion and final-ranking weights are fitted (by cross-validation).

    python data/split_train.py --train_file data/csl/recall/train.csv --output_dir output/pipeline/csl/split

Why a held-out part: the recall model and the reranker are trained on their queries, so on those queries
their scores are overconfident; weights fitted there would trust them too much. The dev queries are never
used for a choice: they are only reported. The split is by distinct query, seeded, and deterministic.
Writes <output_dir>/train_model.csv and <output_dir>/train_fit.csv (the same query<TAB>doc format).

Cross-fitting (--folds K): the queries fall into K folds, the first one the fit part (--fit_ratio is 1/K), and
for each other fold i <output_dir>/fold<i>_train.csv (every pair but its queries') and fold<i>_heldout.csv: a
recall model trained on fold<i>_train.csv never saw the queries of fold<i>_heldout.csv, so with one such model
per fold every training query has neural signals from a model that never trained on it (search/fit.py).
"""

import argparse
import os
import random

from ns_common.cli import check_outputs, entry_point, fail
from ns_common.io import DataFileError, check_file, read_text_pairs, write_lines
from ns_common.utils import logger


def shuffled_queries(pairs, fit_ratio, seed):
    """(the fit part's queries, the model part's queries in their seeded order): at least one query on each side."""
    queries = sorted({q for q, _ in pairs})
    random.Random(seed).shuffle(queries)
    n_fit = min(max(1, round(len(queries) * fit_ratio)), len(queries) - 1)
    return set(queries[:n_fit]), queries[n_fit:]


def split_queries(pairs, fit_ratio, seed):
    """(model_pairs, fit_pairs): every pair of a query lands on the same side; at least one query per side."""
    fit, _ = shuffled_queries(pairs, fit_ratio, seed)
    return [p for p in pairs if p[0] not in fit], [p for p in pairs if p[0] in fit]


def cross_fit_folds(pairs, folds, seed):
    """[(fold_train_pairs, fold_heldout_pairs)] for folds 1..folds-1 (fold 0 is the fit part of split_queries with
    fit_ratio 1/folds): the model part's queries dealt round-robin in their seeded order."""
    _, model_queries = shuffled_queries(pairs, 1.0 / folds, seed)
    result = []
    for fold in range(1, folds):
        held = set(model_queries[fold - 1 :: folds - 1])
        result.append(([p for p in pairs if p[0] not in held], [p for p in pairs if p[0] in held]))
    return result


@entry_point
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_file", required=True, help="query<TAB>doc pairs (recall/train.csv)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument(
        "--fit_ratio", type=float, default=0.25, help="share of the training queries held out for fitting"
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=None,
        help="cross-fitting: K folds of the queries, the fit part one of them (--fit_ratio 1/K), and a train / "
        "held-out file pair per other fold",
    )
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.folds is not None:
        if args.folds < 2:
            fail(f"--folds must be at least 2, got {args.folds}")
        args.fit_ratio = 1.0 / args.folds
    model_file, fit_file = (
        os.path.join(args.output_dir, "train_model.csv"),
        os.path.join(args.output_dir, "train_fit.csv"),
    )
    fold_files = [
        (os.path.join(args.output_dir, f"fold{i}_train.csv"), os.path.join(args.output_dir, f"fold{i}_heldout.csv"))
        for i in range(1, args.folds or 1)
    ]
    check_outputs(
        files=[("output_dir", path) for path in (model_file, fit_file, *(f for pair in fold_files for f in pair))],
        dirs=[("output_dir", args.output_dir)],
        inputs=[("train_file", args.train_file)],
    )
    if not 0.0 < args.fit_ratio < 1.0:
        fail(f"--fit_ratio must be between 0 and 1 (exclusive), got {args.fit_ratio}")
    try:
        pairs = list(read_text_pairs(check_file(args.train_file, "--train_file")))
    except DataFileError as e:
        fail(str(e))
    need = args.folds or 2
    if len({q for q, _ in pairs}) < need:
        fail(f"--train_file {args.train_file}: need at least {need} distinct queries to split, got {len(pairs)} pairs")
    model_pairs, fit_pairs = split_queries(pairs, args.fit_ratio, args.seed)
    write_lines(model_file, model_pairs)
    write_lines(fit_file, fit_pairs)
    for (train_file, heldout_file), (train, heldout) in zip(
        fold_files, cross_fit_folds(pairs, args.folds or 1, args.seed)
    ):
        write_lines(train_file, train)
        write_lines(heldout_file, heldout)
    logger.info(
        f"{args.train_file}: {len(model_pairs)} pairs -> {model_file} (model training), "
        f"{len(fit_pairs)} pairs -> {fit_file} (fusion / final-ranking fit)"
        + (
            f"; {len(fold_files)} more cross-fitting folds -> {args.output_dir}/fold<i>_{{train,heldout}}.csv"
            if fold_files
            else ""
        )
    )


if __name__ == "__main__":
    main()
