"""Recall of an encoder with some of its layers left out: the evidence behind the pretrained recipe's layer settings,
measured on training queries against their titles and a random sample of the other corpus titles.

Zero-shot, a converted encoder (pretrained/convert.py --drop_layers; the converted model has seen none of the
training queries, so all of them are held out):

    python pretrained/layer_probe.py --model_name_or_path output/pretrained/e5-small \
        --query_files data/csl/recall/train.csv --corpus_file data/csl/recall/corpus.csv \
        --drop "" 5 3,7 3,5,7 2,4,6,8 --save_path output/layer_probe.md

Fine-tuned, the layers left out of the query encoder alone (export_model.py --query_drop_layers; --queries_only:
the titles keep the whole model), each of the cross-fitting recall models on the quarter it never trained on:

    P=output/pipeline/csl; python pretrained/layer_probe.py --model_name_or_path $P/pretrained/e5-small \
        --params_path $P/inbatch/domain_simcse/model_final $P/crossfit/fold{1,2,3}/inbatch/model_final \
        --query_files $P/split/train_fit.csv $P/split/fold{1,2,3}_heldout.csv --queries_only \
        --corpus_file data/csl/recall/corpus.csv --drop "" 3,7 5,7 3,5,7 2,4,6,8 --save_path output/query_layers.md

Each --drop is a set of the model's layers (0-based, comma-separated; "" none) taken out of its encoder, exactly
what --drop_layers converts (tests/test_pretrained.py checks the two agree). Written: one row per set (R@1, R@10,
MRR@10 with its standard error over the queries, the layers left), and the paired difference to the first set.
"""

import argparse
import os
import random
import time

import numpy as np

from ns_common.cli import check_outputs, entry_point, layer_list, positive_int
from ns_common.errors import ConfigError
from ns_common.io import atomic_write, read_corpus, read_text_pairs
from ns_common.utils import logger


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="a converted encoder (pretrained/convert.py)")
    parser.add_argument(
        "--params_path",
        nargs="*",
        default=[],
        help="fine-tuned checkpoints of --model_name_or_path; with several, --query_files gives each its own (held-out) "
        "queries, in the same order; none: the model as it is",
    )
    parser.add_argument("--query_files", nargs="+", required=True, help="query<TAB>title pairs (training queries)")
    parser.add_argument(
        "--queries_only",
        action="store_true",
        help="leave the layers out of the query encoder alone; the titles keep the whole model",
    )
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
    if len(args.params_path) > 1 and len(args.query_files) != len(args.params_path):
        raise ConfigError(
            f"--params_path: {len(args.params_path)} models need as many --query_files (each model's held-out "
            f"queries), got {len(args.query_files)}"
        )
    import paddle

    from ns_common.semantic import embed_texts, leave_out_layers, load_encoder

    if len(args.params_path) > 1:
        query_sets = [list(read_text_pairs(path)) for path in args.query_files]
    else:
        query_sets = [[pair for path in args.query_files for pair in read_text_pairs(path)]]
    pairs = [pair for queries in query_sets for pair in queries]
    golds = sorted({title for _, title in pairs})
    gold_set = set(golds)
    others = [t for t in dict.fromkeys(read_corpus(args.corpus_file)) if t not in gold_set]
    random.Random(args.seed).shuffle(others)
    titles = golds + others[: args.corpus_sample]
    position = {t: i for i, t in enumerate(titles)}

    def embed(model, tokenizer, texts, role):
        return embed_texts(model, tokenizer, texts, args.max_seq_length, args.batch_size, role=role)

    reciprocal = {drop: [] for drop in args.drop}
    hits, top10 = {drop: [] for drop in args.drop}, {drop: [] for drop in args.drop}
    for params_path, queries in zip(args.params_path or [None], query_sets):
        model, tokenizer = load_encoder(args.model_name_or_path, params_path)
        layers = list(model.ptm.encoder.layers)
        gold = np.array([position[title] for _, title in queries])
        whole_titles = embed(model, tokenizer, titles, "doc") if args.queries_only else None
        for drop in args.drop:
            start = time.time()
            model.ptm.encoder.layers = paddle.nn.LayerList(layers)
            leave_out_layers(model, drop, "--drop")
            query_vectors = embed(model, tokenizer, [q for q, _ in queries], "query")
            docs = whole_titles if args.queries_only else embed(model, tokenizer, titles, "doc")
            ranks = gold_ranks(query_vectors, docs, gold)
            reciprocal[drop].append(reciprocal_ranks(ranks))
            hits[drop].append(ranks < 1)
            top10[drop].append(ranks < 10)
            logger.info(
                f"{params_path or args.model_name_or_path}, {','.join(map(str, drop)) or 'none'} left out: MRR@10 "
                f"{100 * reciprocal[drop][-1].mean():.2f} ({time.time() - start:.0f} s)"
            )
    rows, first = [], np.concatenate(reciprocal[args.drop[0]])
    for drop in args.drop:
        rr = np.concatenate(reciprocal[drop])
        diff = rr - first
        rows.append(
            f"| {','.join(map(str, drop)) or 'none'} | {len(layers) - len(drop)} | "
            f"{100 * np.concatenate(hits[drop]).mean():.2f} | {100 * np.concatenate(top10[drop]).mean():.2f} | "
            f"{100 * rr.mean():.2f} ± {100 * rr.std(ddof=1) / np.sqrt(len(rr)):.2f} | "
            f"{100 * diff.mean():+.2f} ± {100 * diff.std(ddof=1) / np.sqrt(len(diff)):.2f} |"
        )
    with atomic_write(args.save_path) as f:
        f.write(
            f"# Layers left out{' of the query encoder' if args.queries_only else ''}: "
            f"{', '.join(args.params_path) or 'zero-shot, ' + os.path.basename(os.path.normpath(args.model_name_or_path))}"
            "\n\n"
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
