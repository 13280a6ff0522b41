"""Zero-shot recall of a converted encoder with some of its layers left out: the evidence behind the pretrained
recipe's --drop_layers (pretrained/convert.py), measured on training queries (the converted model has seen none of
them, so all of them are held out) against their titles and a random sample of the other corpus titles.

    python pretrained/layer_probe.py --model_name_or_path output/pretrained/e5-small \
        --query_files data/csl/recall/train.csv --corpus_file data/csl/recall/corpus.csv \
        --drop "" 5 3,7 3,5,7 2,4,6,8 --save_path output/layer_probe.md

Each --drop is a set of the model's layers (0-based, comma-separated; "" none) taken out of its encoder, exactly
what --drop_layers converts (tests/test_pretrained.py checks the two agree). Written: one row per set (R@1, R@10,
MRR@10 with its standard error over the queries, the layers left), and the paired difference to the first set.
"""

import argparse
import os
import random
import time

import numpy as np

from ns_common.cli import check_outputs, entry_point, positive_int
from ns_common.io import atomic_write, read_corpus, read_text_pairs
from ns_common.utils import logger
from pretrained.convert import layer_list


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="a converted encoder (pretrained/convert.py)")
    parser.add_argument("--query_files", nargs="+", required=True, help="query<TAB>title pairs (training queries)")
    parser.add_argument("--corpus_file", required=True, help="the corpus titles, one a line")
    parser.add_argument(
        "--corpus_sample",
        type=positive_int,
        default=2000,
        help="titles of the corpus beside the queries' own (a fixed random sample; default 2000)",
    )
    parser.add_argument("--drop", nargs="+", type=layer_list, required=True, help='layer sets to leave out ("" none)')
    parser.add_argument("--max_seq_length", type=positive_int, default=64)
    parser.add_argument("--batch_size", type=positive_int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save_path", required=True, help="the table to write (markdown)")
    return parser.parse_args(argv)


def gold_ranks(query_vectors, title_vectors, gold) -> np.ndarray:
    """The 0-based rank of each query's gold title among all titles (ties counted against it)."""
    scores = query_vectors @ title_vectors.T
    return (scores > scores[np.arange(len(gold)), gold][:, None]).sum(axis=1)


def reciprocal_ranks(ranks, k=10) -> np.ndarray:
    return np.where(ranks < k, 1.0 / (ranks + 1), 0.0)


@entry_point
def main(argv=None):
    args = parse_args(argv)
    check_outputs(
        files=[("save_path", args.save_path)],
        inputs=[("corpus_file", args.corpus_file), *[("query_files", p) for p in args.query_files]],
    )
    import paddle

    from ns_common.semantic import embed_texts, load_encoder

    pairs = [pair for path in args.query_files for pair in read_text_pairs(path)]
    golds = sorted({title for _, title in pairs})
    gold_set = set(golds)
    others = [t for t in dict.fromkeys(read_corpus(args.corpus_file)) if t not in gold_set]
    random.Random(args.seed).shuffle(others)
    titles = golds + others[: args.corpus_sample]
    position = {t: i for i, t in enumerate(titles)}
    gold = np.array([position[title] for _, title in pairs])

    model, tokenizer = load_encoder(args.model_name_or_path)
    layers = list(model.ptm.encoder.layers)
    rows, first = [], None
    for drop in args.drop:
        start = time.time()
        model.ptm.encoder.layers = paddle.nn.LayerList([layer for i, layer in enumerate(layers) if i not in drop])
        queries = embed_texts(
            model, tokenizer, [q for q, _ in pairs], args.max_seq_length, args.batch_size, role="query"
        )
        docs = embed_texts(model, tokenizer, titles, args.max_seq_length, args.batch_size, role="doc")
        ranks = gold_ranks(queries, docs, gold)
        rr = reciprocal_ranks(ranks)
        first = rr if first is None else first
        diff = rr - first
        rows.append(
            f"| {','.join(map(str, drop)) or 'none'} | {len(layers) - len(drop)} | {100 * (ranks < 1).mean():.2f} | "
            f"{100 * (ranks < 10).mean():.2f} | {100 * rr.mean():.2f} ± {100 * rr.std(ddof=1) / np.sqrt(len(rr)):.2f} | "
            f"{100 * diff.mean():+.2f} ± {100 * diff.std(ddof=1) / np.sqrt(len(diff)):.2f} |"
        )
        logger.info(f"{rows[-1]} ({time.time() - start:.0f} s)")
    with atomic_write(args.save_path) as f:
        f.write(
            f"# Layers left out, zero-shot: {os.path.basename(os.path.normpath(args.model_name_or_path))}\n\n"
            f"{len(pairs)} queries ({', '.join(args.query_files)}) against their {len(golds)} titles and "
            f"{len(titles) - len(golds)} others of {args.corpus_file} (seed {args.seed}); MRR@10 ± its standard error "
            "over the queries; the last column: the paired difference to the first row.\n\n"
            "| left out | layers | R@1 | R@10 | MRR@10 | vs the first row |\n|---|---:|---:|---:|---:|---:|\n"
            + "\n".join(rows)
            + "\n"
        )
    logger.info(f"{len(args.drop)} layer sets x {len(pairs)} queries, {len(titles)} titles -> {args.save_path}")


if __name__ == "__main__":
    main()
