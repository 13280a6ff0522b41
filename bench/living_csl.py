"""CSL built on 80% of its papers, the other 20% added by an update: the dev figures against a build on all of them
(issue 30's done-when; a measurement, not a test: tests/test_living_index.py checks BM25's ids and scores).

    python bench/living_csl.py --model_dir output/pipeline/csl/export/recall \
        --ranking_dir output/pipeline/csl/export/ranking --embedding_path output/pipeline/csl/milvus/corpus_embedding.npy

--records_file (data/csl/milvus/papers.jsonl, ids and fields) holds the titles of the corpus the served model embedded
into --embedding_path (row i = line i; its corpus_embedding.json names that corpus, whose titles must be these, line
for line). Two collections keyed by paper ids (recall.milvus.insert.update_collection, the vectors bound to the
model): `updated` = the first 80% of the records, then the file of all of them (the update plans the other 20% as
new and writes only those); `whole` = all of them at once. Each answers --query_file (dev) in bm25, dense (the query
encoded by --model_dir) and system (SearchSystem with --ranking_dir): on `whole` with the ranking as fitted; on
`updated` with its lexical statistics counted over the first 80% (a ranking fitted before the update), then after
search.refresh_stats over the updated collection. Prints the table (Recall@1 / @10, MRR@10, %), whether each mode's
hits (ids, scores) are identical on both collections, and writes --output_file (JSON).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))
from stale_stats import metrics  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="the exported recall model that embedded --embedding_path")
    parser.add_argument("--ranking_dir", required=True, help="search/fit.py's ranking, fitted with --model_dir")
    parser.add_argument("--embedding_path", required=True, help="feature_extract's .npy of the corpus (row i = line i)")
    parser.add_argument("--records_file", default=os.path.join(REPO, "data", "csl", "milvus", "papers.jsonl"))
    parser.add_argument("--query_file", default=os.path.join(REPO, "data", "csl", "recall", "dev.csv"))
    parser.add_argument("--part", type=float, default=0.8, help="share of the papers the first build holds")
    parser.add_argument("--batch_size", type=int, default=2000, help="rows per insert request")
    parser.add_argument("--output_file", default=os.path.join(REPO, "bench", "results", "living_csl.json"))
    return parser.parse_args(argv)


def bound_vectors(embedding_path, records):
    """The .npy's vectors and its model binding ({"model", "probe"}), checked to be these records' titles."""
    from ns_common.errors import BadInputError
    from recall.milvus.data import iter_corpus_chunks

    with open(os.path.splitext(embedding_path)[0] + ".json", encoding="utf-8") as f:
        provenance = json.load(f)
    corpus = provenance["corpus"]["file"]
    if not os.path.isfile(corpus):  # recorded where feature_extract ran: the same file name under this checkout
        corpus = os.path.join(REPO, "data", "csl", "milvus", os.path.basename(corpus))
    titles = [t for _, chunk in iter_corpus_chunks(corpus, 65536) for t in chunk]
    vectors = np.load(embedding_path)
    if titles != [r["title"] for r in records] or len(vectors) != len(records):
        raise BadInputError(f"{embedding_path}: not the vectors of the titles of these {len(records)} records")
    return vectors, {"model": provenance["model"], "probe": provenance["probe"]}


def build(uri, steps, batch_size, model):
    """A collection keyed by paper ids at uri, given each (records file, vectors) of steps in turn."""
    from recall.milvus import insert, store
    from recall.milvus.config import load_config

    config = load_config(uri=uri, batch_size=batch_size, primary_key="paper_id")
    client = store.connect(config)
    try:
        written = [
            insert.update_collection(client, config, path, vectors, model, None).inserted for path, vectors in steps
        ]
    finally:
        store.close(client, config)
    return config, written


def answers(config, encoder, rankings, queries):
    """{row name: Results per query} of bm25, dense and system with each ranking of rankings {name: Ranking}."""
    from recall.milvus.search import MilvusSearcher
    from search.system import SearchSystem

    found = {}
    with MilvusSearcher(config, encoder) as searcher:
        for name, ranking in rankings.items():
            with SearchSystem(searcher, ranking, encoder) as system:
                if not found:
                    for mode in ("bm25", "dense"):
                        found[mode] = system.search(queries, mode=mode, top_k=10)
                found[name] = system.search(queries, top_k=10)
    return found


def main(argv=None):
    from recall.milvus.data import read_queries
    from recall.milvus.model import TextEncoder
    from search.features import LexicalStats
    from search.ranking import Ranking
    from search.refresh_stats import refresh

    args = parse_args(argv)
    with open(args.records_file, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    vectors, model = bound_vectors(args.embedding_path, records)
    part = int(args.part * len(records))
    queries, golds = read_queries(args.query_file)
    encoder = TextEncoder(model_dir=args.model_dir)
    root = tempfile.mkdtemp(prefix="living_csl_")
    try:
        first, every = os.path.join(root, "first.jsonl"), os.path.join(root, "every.jsonl")
        for path, chosen in ((first, records[:part]), (every, records)):
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen)
        whole, _ = build(os.path.join(root, "whole.db"), [(every, vectors)], args.batch_size, model)
        steps = [(first, vectors[:part]), (every, vectors)]
        updated, written = build(os.path.join(root, "updated.db"), steps, args.batch_size, model)
        fitted = Ranking.load(args.ranking_dir, args.model_dir)
        before = Ranking.load(args.ranking_dir, args.model_dir)
        before.stats = LexicalStats.from_texts([r["title"] for r in records[:part]])
        refreshed_dir = os.path.join(root, "ranking")
        shutil.copytree(args.ranking_dir, refreshed_dir)
        from recall.milvus.search import MilvusSearcher

        with MilvusSearcher(updated) as searcher:
            refresh(refreshed_dir, searcher)
        refreshed = Ranking.load(refreshed_dir, args.model_dir)
        on_whole = answers(whole, encoder, {"system": fitted}, queries)
        on_updated = answers(updated, encoder, {"system (stale)": before, "system": refreshed}, queries)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = []
    for collection, found in (("whole", on_whole), ("updated", on_updated)):
        for name, results in found.items():
            same = None
            if collection == "updated" and name in on_whole:
                same = hits_of(results) == hits_of(on_whole[name])
            rows.append({"collection": collection, "mode": name, "identical_to_whole": same, **metrics(results, golds)})
    table = ["| collection | mode | R@1 | R@10 | MRR@10 | hits identical to whole |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        same = {None: "", True: "yes", False: "no"}[r["identical_to_whole"]]
        table.append(
            f"| {r['collection']} | {r['mode']} | {r['recall@1']:.2f} | {r['recall@10']:.2f} | {r['mrr@10']:.2f} | "
            f"{same} |"
        )
    print("\n".join(table))
    os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
    with open(args.output_file, "w", encoding="utf-8") as f:
        command = "python bench/living_csl.py " + " ".join(sys.argv[1:] if argv is None else argv)
        summary = {"command": command, "papers": len(records), "first_build": part, "written": written, "rows": rows}
        json.dump(summary, f, indent=2, ensure_ascii=False)


def hits_of(results):
    """(id, score to 4 decimals) of every hit of every query."""
    return [[(hit.id, round(hit.score, 4)) for hit in hits] for hits in results]


if __name__ == "__main__":
    main()
