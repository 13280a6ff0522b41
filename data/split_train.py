"""Splits the labelled training pairs into the part the neural models learn from and a held-out "fit" part
on which the search system's fusion and final-ranking weights are fitted (by cross-validation).

    python data/split_train.py --train_file data/csl/recall/train.csv --output_dir output/pipeline/csl/split

Why a held-out part: the recall model and the reranker are trained on their queries, so on those queries
their scores are overconfident; weights fitted there would trust them too much. The dev queries are never
used for a choice: they are only reported. The split is by distinct query, seeded, and deterministic.
Writes <output_dir>/train_model.csv and <output_dir>/train_fit.csv (the same query<TAB>doc format).
"""

import argparse
import os
import random

from ns_common.cli import check_outputs, entry_point, fail
from ns_common.io import DataFileError, check_file, read_text_pairs, write_lines
from ns_common.utils import logger


def split_queries(pairs, fit_ratio, seed):
    """(model_pairs, fit_pairs): every pair of a query lands on the same side; at least one query per side."""
    queries = sorted({q for q, _ in pairs})
    random.Random(seed).shuffle(queries)
    n_fit = min(max(1, round(len(queries) * fit_ratio)), len(queries) - 1)
    fit = set(queries[:n_fit])
    return [p for p in pairs if p[0] not in fit], [p for p in pairs if p[0] in fit]


@entry_point
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_file", required=True, help="query<TAB>doc pairs (recall/train.csv)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument(
        "--fit_ratio", type=float, default=0.25, help="share of the training queries held out for fitting"
    )
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    model_file, fit_file = (
        os.path.join(args.output_dir, "train_model.csv"),
        os.path.join(args.output_dir, "train_fit.csv"),
    )
    check_outputs(
        files=[("output_dir", model_file), ("output_dir", fit_file)],
        dirs=[("output_dir", args.output_dir)],
        inputs=[("train_file", args.train_file)],
    )
    if not 0.0 < args.fit_ratio < 1.0:
        fail(f"--fit_ratio must be between 0 and 1 (exclusive), got {args.fit_ratio}")
    try:
        pairs = list(read_text_pairs(check_file(args.train_file, "--train_file")))
    except DataFileError as e:
        fail(str(e))
    if len({q for q, _ in pairs}) < 2:
        fail(f"--train_file {args.train_file}: need at least 2 distinct queries to split, got {len(pairs)} pairs")
    model_pairs, fit_pairs = split_queries(pairs, args.fit_ratio, args.seed)
    write_lines(model_file, model_pairs)
    write_lines(fit_file, fit_pairs)
    logger.info(
        f"{args.train_file}: {len(model_pairs)} pairs -> {model_file} (model training), "
        f"{len(fit_pairs)} pairs -> {fit_file} (fusion / final-ranking fit)"
    )


if __name__ == "__main__":
    main()
