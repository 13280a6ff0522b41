"""The bar "what a user would pick instead": two recall lists (e.g. a small pretrained embedder's and BM25's) fused by
plain reciprocal-rank fusion, scored like every other row (Recall@K, MRR@10 against the query pairs).

    python bench/rrf_bar.py --similar_text_pair_file data/csl/recall/dev.csv \
        --recall_result_files output/pipeline/csl_pretrained/recall/pretrained_zero_shot/recall_result.txt \
                              output/pipeline/csl_pretrained/recall/bm25_reference/recall_result.txt

Each list contributes 1 / (k + rank) for each document it holds (k = 60, ranks from 1); ties keep the first list's
order. Prints one line of metrics; --output_json writes them.
"""

import argparse
import json

from ns_common.cli import check_files, entry_point
from ns_common.evaluate import recall_metrics
from ns_common.io import read_recall_result, read_similar_pairs


def rrf(lists, k=60, top=50) -> list:
    """The fused order of several ranked document lists."""
    scores = {}
    for ranked in lists:
        for rank, doc in enumerate(ranked, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    order = {doc: i for i, doc in enumerate(d for ranked in lists for d in ranked)}
    return sorted(scores, key=lambda d: (-scores[d], order[d]))[:top]


@entry_point
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--similar_text_pair_file", required=True)
    p.add_argument("--recall_result_files", nargs="+", required=True)
    p.add_argument("--k", type=int, default=60)
    p.add_argument("--recall_num", type=int, default=50)
    p.add_argument("--output_json", default=None)
    args = p.parse_args(argv)
    check_files(
        ("similar_text_pair_file", args.similar_text_pair_file),
        *[("recall_result_files", f) for f in args.recall_result_files],
    )
    queries, gold = read_similar_pairs(args.similar_text_pair_file)
    results = [read_recall_result(f) for f in args.recall_result_files]
    fused = {q: rrf([[d for d, _ in r.get(q, [])] for r in results], args.k, args.recall_num) for q in queries}
    metrics = recall_metrics(queries, gold, fused, args.recall_num)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in metrics.items()}))
    if args.output_json:
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2)
    return metrics


if __name__ == "__main__":
    main()
