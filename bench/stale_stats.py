"""How much the learned ranking moves when papers arrive and its lexical statistics are not refreshed (issue 30; a
measurement, not a test).

    python bench/stale_stats.py --ranking_dir R --uri DB --corpus_file data/csl/milvus/papers.jsonl \
        --query_file data/csl/recall/dev.csv [--growth 0.1 0.5]

The ranking in R (fitted on the corpus the collection at DB holds) serves the queries of --query_file in mode
system (BM25's top 50 from Milvus, whose own statistics are always current, reordered by the LightGBM model) with
lexical statistics (search/features.py LexicalStats: document frequencies, mean lengths) counted three ways: over
the whole corpus (what search.refresh_stats gives), and over only its first 1 / (1 + g) lines for each growth g, as
a ranking whose statistics were counted before the last g (10%, 50%) more papers arrived would serve them. BM25's
own order is the reference. Prints the table (Recall@1 / @10, MRR@10, %) and writes --output_file (JSON).
"""

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranking_dir", required=True, help="search/fit.py's output, fitted on --corpus_file")
    parser.add_argument("--uri", required=True, help="the collection of --corpus_file (Milvus Lite .db or a server)")
    parser.add_argument("--corpus_file", required=True, help="the corpus the collection holds, in its line order")
    parser.add_argument("--query_file", required=True, help="query<TAB>gold title lines (e.g. recall/dev.csv)")
    parser.add_argument("--growth", type=float, nargs="+", default=[0.1, 0.5], help="papers arrived since, as a share")
    parser.add_argument("--output_file", default=os.path.join(REPO, "bench", "results", "stale_stats.json"))
    return parser.parse_args(argv)


def main(argv=None):
    from recall.milvus.config import load_config
    from recall.milvus.data import iter_corpus_chunks, read_queries
    from recall.milvus.search import MilvusSearcher
    from search.features import LexicalStats
    from search.ranking import Ranking
    from search.system import SearchSystem

    args = parse_args(argv)
    texts = [t for _, chunk in iter_corpus_chunks(args.corpus_file, 65536) for t in chunk]
    queries, golds = read_queries(args.query_file)
    ranking = Ranking.load(args.ranking_dir)
    variants = [("refreshed: the whole corpus", len(texts))] + [
        (f"stale: {g:.0%} more papers since", round(len(texts) / (1 + g))) for g in args.growth
    ]
    rows = []
    with MilvusSearcher(load_config(uri=args.uri)) as searcher:
        system = SearchSystem(searcher, ranking)
        bm25 = system.search(queries, mode="bm25", top_k=10)
        rows.append({"statistics": "BM25's own order (reference)", "papers_counted": None, **metrics(bm25, golds)})
        for name, counted in variants:
            ranking.stats = LexicalStats.from_texts(texts[:counted])
            ranked = system.search(queries, top_k=10, explain=False)
            rows.append({"statistics": name, "papers_counted": counted, **metrics(ranked, golds)})
    table = ["| lexical statistics | papers counted | R@1 | R@10 | MRR@10 |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        counted = f"{r['papers_counted']:,}" if r["papers_counted"] else ""
        table.append(
            f"| {r['statistics']} | {counted} | {r['recall@1']:.2f} | {r['recall@10']:.2f} | {r['mrr@10']:.2f} |"
        )
    print("\n".join(table))
    os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
    with open(args.output_file, "w", encoding="utf-8") as f:
        command = "python bench/stale_stats.py " + " ".join(sys.argv[1:] if argv is None else argv)
        json.dump({"command": command, "corpus_documents": len(texts), "rows": rows}, f, indent=2, ensure_ascii=False)


def metrics(results, golds) -> dict:
    from ns_common.metrics import retrieval_metrics

    return retrieval_metrics([[hit.text for hit in hits] for hits in results], golds, ks=(1, 10))


if __name__ == "__main__":
    main()
