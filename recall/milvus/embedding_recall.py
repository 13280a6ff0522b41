"""PaddleNLP's `recall/milvus/embedding_recall.py` (an older revision): searches the Milvus collection with
one row of corpus_embedding.npy (row 1 in PaddleNLP) and prints the time it took and the hits.

    python recall/milvus/embedding_recall.py --embedding_path output/milvus/corpus_embedding.npy --index 1 [--top_k 10] [--uri ...]
    # (500, 256)
    # time cost 0.004 s
    # hit: (distance: 1.0, id: 1), text field: ...

Flags: --embedding_path, --index (the row; PaddleNLP hard-codes 1), --top_k, and the Milvus settings of
recall/milvus/config.yml (--uri, --collection, --partition, ...). A thin wrapper over MilvusSearcher.search_vectors;
query.py is the full search command (text queries, query files, bm25 / hybrid / reranking).
"""

import argparse
import time

import numpy as np

from ns_common.cli import entry_point, fail
from recall.milvus.config import add_config_args, load_config
from recall.milvus.search import MilvusSearcher


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--embedding_path", default="output/milvus/corpus_embedding.npy", help="feature_extract.py's output"
    )
    parser.add_argument("--index", type=int, default=1, help="row of the .npy to search with")
    parser.add_argument("--top_k", type=int, default=10)
    add_config_args(parser)
    return parser.parse_args(argv)


@entry_point
def main(argv=None):
    args = parse_args(argv)
    try:
        embeddings = np.load(args.embedding_path, mmap_mode="r")
    except (OSError, ValueError) as e:
        fail(f"--embedding_path {args.embedding_path}: cannot read a .npy array ({e})")
    print(embeddings.shape)
    if embeddings.ndim != 2 or not 0 <= args.index < len(embeddings):
        fail(f"--index {args.index}: the .npy has {len(embeddings) if embeddings.ndim == 2 else 0} rows")
    with MilvusSearcher(load_config(args)) as searcher:
        start = time.time()
        hits = searcher.search_vectors(np.asarray(embeddings[args.index : args.index + 1]), args.top_k)[0]
        print(f"time cost {time.time() - start:.4f} s")
    for hit in hits:
        print(f"hit: (distance: {hit.score}, id: {hit.id}), text field: {hit.text}")
    return hits


if __name__ == "__main__":
    main()
