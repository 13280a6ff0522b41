"""Scores one recall model on the dev pairs through exact search and through Milvus (dense, bm25, hybrid),
side by side, from the same extracted corpus embeddings:

    python -m recall.milvus.compare_recall --model_dir output/pipeline/sample/export/recall \
        --embedding_path output/milvus/corpus_embedding.npy --corpus_file data/csl/milvus/milvus_data.csv \
        --similar_text_pair_file data/csl/recall/dev.csv [--uri ...] [--result_file results/milvus_recall.tsv]

exact = every query against every row of the .npy (a matrix product: the ground truth of the model);
milvus-dense must match it within the approximation of the index (HNSW); milvus-bm25 and milvus-hybrid
show what Milvus' keyword route adds. Run feature_extract.py and insert.py first (same corpus file).
"""

import argparse
import json
import os

import numpy as np

from ns_common.cli import check_files, entry_point, fail
from ns_common.evaluate import recall_metrics, report
from ns_common.io import read_corpus, read_similar_pairs
from ns_common.recall import exact_search
from ns_common.utils import logger
from recall.milvus.config import add_config_args, load_config
from recall.milvus.model import TextEncoder, add_model_args, check_model_args
from recall.milvus.search import MilvusSearcher


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedding_path", required=True, help="feature_extract.py's corpus_embedding.npy")
    parser.add_argument(
        "--corpus_file", required=True, help="the corpus the embeddings and the collection were built from"
    )
    parser.add_argument("--similar_text_pair_file", required=True, help="query<TAB>gold doc (recall/dev.csv)")
    parser.add_argument("--recall_num", type=int, default=50, help="documents recalled a query, by each search")
    parser.add_argument("--result_file", default=None, help="append the table lines here")
    parser.add_argument("--output_json", default=None, help="write all metrics here")
    add_model_args(parser)
    add_config_args(parser, skip=("batch_size",))
    args = parser.parse_args(argv)
    check_model_args(args)
    check_files(*((flag, getattr(args, flag)) for flag in ("embedding_path", "corpus_file", "similar_text_pair_file")))
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    config = load_config(args)
    queries, gold = read_similar_pairs(args.similar_text_pair_file)
    corpus = read_corpus(args.corpus_file)
    embeddings = np.load(args.embedding_path, mmap_mode="r")
    if len(embeddings) != len(corpus):
        fail(
            f"{args.embedding_path} has {len(embeddings)} rows, {args.corpus_file} {len(corpus)} lines: not the same corpus"
        )
    encoder = TextEncoder.from_args(args)
    query_vectors = encoder.encode(queries)
    results = {}
    ids, _ = exact_search(query_vectors, np.asarray(embeddings), args.recall_num)
    results["exact"] = recall_metrics(
        queries, gold, {q: [corpus[j] for j in row] for q, row in zip(queries, ids)}, args.recall_num
    )
    with MilvusSearcher(config, encoder, warn_truncation=False) as searcher:
        for mode in searcher.modes:
            vectors = None if mode == "bm25" else query_vectors
            hits = searcher.search_batch(queries, args.recall_num, mode, vectors=vectors)
            results[f"milvus-{mode}"] = recall_metrics(
                queries, gold, {q: [h.text for h in row] for q, row in zip(queries, hits)}, args.recall_num
            )
    for name, metrics in results.items():
        report(name, metrics, args.result_file)
    gap = results["milvus-dense"]["recall@10"] - results["exact"]["recall@10"]
    logger.info(
        f"Recall@10 through Milvus ({config.index_type}) minus exact search: {gap:+.2f} points ({len(queries)} queries)"
    )
    if args.output_json:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_json)), exist_ok=True)
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
