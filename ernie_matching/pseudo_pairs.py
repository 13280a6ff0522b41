"""Pseudo-labelled training triples from the corpus itself, for a reranker that starts from scratch.

    python ernie_matching/pseudo_pairs.py --corpus_file data/csl/recall/corpus.csv \
        --output_file output/ernie_matching/data/pseudo_pairwise.csv

Why: a from-scratch cross-encoder first has to discover that words of the query reappearing in the
title matter. On a few hundred labelled queries it memorises them instead; with one pseudo query per
corpus title it learns the matching itself (measured on CSL: the loss leaves its plateau after a few
hundred steps). Each title gets a pseudo query of 1-4 of its own words (jieba, 2+ characters, shuffled,
space-joined like keyword queries), and negatives: random titles (easy, they teach the basic signal) and
titles BM25 ranks high for the pseudo query (hard). Only corpus text is used, no labels: the same
as indexing it. Output: query<TAB>title<TAB>neg_title with a header, for train_pairwise.py --train_file.
"""

import argparse
import logging
import random

from ns_common.bm25 import BM25Index
from ns_common.cli import check_outputs, entry_point, fail
from ns_common.io import DataFileError, check_file, read_corpus, write_lines
from ns_common.negatives import normalise_text
from ns_common.utils import Timer, logger


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_file", required=True, help="one title a line (recall/corpus.csv)")
    parser.add_argument("--output_file", required=True, help="query<TAB>title<TAB>neg_title triples with a header")
    parser.add_argument("--random_negatives", type=int, default=1, help="random titles per pseudo query")
    parser.add_argument(
        "--bm25_negatives", type=int, default=1, help="titles BM25 ranks high for the pseudo query, per pseudo query"
    )
    parser.add_argument("--neg_pool", type=int, default=20, help="BM25 negatives are sampled among this many top hits")
    parser.add_argument("--max_words", type=int, default=4, help="at most this many title words in a pseudo query")
    parser.add_argument("--max_titles", type=int, default=0, help="use only the first N titles (0: all)")
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    check_outputs(files=[("output_file", args.output_file)], inputs=[("corpus_file", args.corpus_file)])
    if args.random_negatives < 0 or args.bm25_negatives < 0 or args.random_negatives + args.bm25_negatives == 0:
        fail("--random_negatives and --bm25_negatives must be >= 0 and not both 0")
    if args.max_words < 1:
        fail(f"--max_words must be >= 1, got {args.max_words}")
    return args


def title_words(title, jieba):
    """Distinct words of 2+ characters (Chinese words from jieba, latin terms such as CNN, PM2.5)."""
    return list(dict.fromkeys(w.strip() for w in jieba.cut(title) if len(w.strip()) >= 2))


@entry_point
def main(argv=None):
    args = parse_args(argv)
    try:
        corpus = read_corpus(check_file(args.corpus_file, "--corpus_file"))
    except DataFileError as e:
        fail(str(e))
    import jieba

    jieba.setLogLevel(logging.WARNING)
    timer = Timer()
    rng = random.Random(args.seed)
    titles = [t for t in corpus if t][: args.max_titles or None]
    queries, golds = [], []
    for title in titles:
        words = title_words(title, jieba)
        if len(words) < 2:  # a one-word title would make its own query: nothing to learn
            continue
        queries.append(" ".join(rng.sample(words, rng.randint(1, min(args.max_words, len(words))))))
        golds.append(title)
    if not queries:
        fail(f"--corpus_file {args.corpus_file}: no title with two or more words")

    hits = BM25Index(corpus).search(queries, k=args.neg_pool + 1)[0] if args.bm25_negatives else None
    rows = []
    for i, (query, gold) in enumerate(zip(queries, golds)):
        gold_key = normalise_text(gold)
        negatives = []
        if hits is not None:
            pool = [corpus[j] for j in hits[i] if corpus[j] and normalise_text(corpus[j]) != gold_key][: args.neg_pool]
            negatives += rng.sample(pool, min(args.bm25_negatives, len(pool)))
        while len(negatives) < args.bm25_negatives + args.random_negatives and len(titles) > 1:
            candidate = rng.choice(titles)
            if normalise_text(candidate) != gold_key:
                negatives.append(candidate)
        rows.extend((query, gold, neg) for neg in negatives)
    n = write_lines(args.output_file, rows, header=("query", "title", "neg_title"))
    logger.info(
        f"{len(queries)} pseudo queries from {len(titles)} titles, {n} triples "
        f"({args.random_negatives} random + {args.bm25_negatives} BM25 negatives each) in {timer.seconds:.1f}s -> {args.output_file}"
    )


if __name__ == "__main__":
    main()
