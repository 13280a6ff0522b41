"""Chooses the lexical leg's BM25 k1 and b on the training queries (never on dev): each pair of the grid
is scored on recall/train.csv with the leg's own tokens (joined character uni+bigrams), and the best
MRR@10 wins (ties: the bm25s defaults). BM25 has nothing to fit, so the training queries are an honest
place to choose; the chosen pair goes into recall/milvus/config.yml (bm25_k1, bm25_b).

    python scripts/tune_bm25.py --data_dir data/csl --output_file bench/results/tune_bm25.json
"""

import argparse
import json
import os

from ns_common.bm25 import joined_char_ngrams
from ns_common.cli import entry_point
from ns_common.io import read_corpus, read_text_pairs

K1_GRID = (0.6, 0.9, 1.2, 1.5, 2.0)
B_GRID = (0.5, 0.75, 0.9, 1.0)
DEFAULT = (1.5, 0.75)


def score(corpus, pairs, k1, b):
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index([joined_char_ngrams(d) for d in corpus], show_progress=False)
    vocab = retriever.vocab_dict
    queries = sorted({q for q, _ in pairs})
    gold = {}
    for q, d in pairs:
        gold.setdefault(q, set()).add(d)
    found, _ = retriever.retrieve(
        [[t for t in joined_char_ngrams(q) if t in vocab] or ["[unk]"] for q in queries], k=10, show_progress=False
    )
    r1 = mrr = 0.0
    for q, row in zip(queries, found):
        ranks = [rank for rank, i in enumerate(row, 1) if corpus[int(i)] in gold[q]]
        r1 += bool(ranks) and ranks[0] == 1
        mrr += 1.0 / ranks[0] if ranks else 0.0
    return 100 * r1 / len(queries), 100 * mrr / len(queries)


@entry_point
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="data/csl")
    parser.add_argument("--output_file", default=None)
    args = parser.parse_args()
    corpus = read_corpus(os.path.join(args.data_dir, "recall", "corpus.csv"))
    pairs = list(read_text_pairs(os.path.join(args.data_dir, "recall", "train.csv")))
    rows = [
        {"k1": k1, "b": b, **dict(zip(("recall@1", "mrr@10"), score(corpus, pairs, k1, b)))}
        for k1 in K1_GRID
        for b in B_GRID
    ]
    best = max(rows, key=lambda r: (round(r["mrr@10"], 6), (r["k1"], r["b"]) == DEFAULT))
    print(f"{'k1':>4} {'b':>5} {'R@1':>6} {'MRR@10':>7}   ({len(pairs)} training pairs of {args.data_dir})")
    for r in rows:
        print(f"{r['k1']:>4} {r['b']:>5} {r['recall@1']:>6.2f} {r['mrr@10']:>7.2f}{'  <- chosen' if r is best else ''}")
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8") as f:
            json.dump({"data_dir": args.data_dir, "pairs": len(pairs), "grid": rows, "chosen": best}, f, indent=2)


if __name__ == "__main__":
    main()
