"""PaddleNLP's `recall/milvus/milvus_ann_search.py`: --insert puts corpus_embedding.npy and its corpus into the
Milvus collection, --search prints the nearest neighbours of stored document --index (both may be given).

    python recall/milvus/milvus_ann_search.py --data_path data/sample/milvus/milvus_data.csv \
        --embedding_path output/milvus/corpus_embedding.npy --batch_size 100000 --index 0 --insert
    python recall/milvus/milvus_ann_search.py --index 18 --search [--top_k 10]
    # hit: (distance: 1.0, id: 18), text field: ...

PaddleNLP's flags: --data_path, --embedding_path, --batch_size (rows per insert request), --index, --insert,
--search. Where Milvus is comes from recall/milvus/config.yml (PaddleNLP: config.py) and its flags (--uri,
--token, --collection, ...). "distance" is the score of the collection's metric as pymilvus names it (IP by
default: the cosine of normalised vectors, higher is closer). A thin wrapper: --insert is insert.py,
--search is query.py --search_by_id (MilvusSearcher.search_by_id).
"""

import argparse

from ns_common.cli import entry_point, fail
from recall.milvus import insert
from recall.milvus.config import SETTINGS, add_config_args, load_config
from recall.milvus.search import MilvusSearcher, SearchError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data_path", default="data/sample/milvus/milvus_data.csv", help="the corpus, one document a line (--insert)"
    )
    parser.add_argument(
        "--embedding_path", default="output/milvus/corpus_embedding.npy", help="feature_extract.py's output (--insert)"
    )
    parser.add_argument("--batch_size", type=int, default=None, help="rows per insert request (default: config.yml's)")
    parser.add_argument(
        "--index", type=int, default=18, help="id (corpus line number) of the document whose neighbours --search prints"
    )
    parser.add_argument("--top_k", type=int, default=10, help="neighbours printed by --search")
    parser.add_argument("--insert", action="store_true", help="insert the embeddings and their texts")
    parser.add_argument("--search", action="store_true", help="search the neighbours of document --index")
    add_config_args(parser, skip=("batch_size",))
    args = parser.parse_args(argv)
    if not (args.insert or args.search):
        fail("give --insert and/or --search")
    return args


def milvus_flags(args):
    """The Milvus settings given on the command line, as flags for insert.py."""
    flags = ["--config", args.config]
    for key in SETTINGS:
        if key != "batch_size" and getattr(args, key) is not None:
            flags += [f"--{key}", str(getattr(args, key))]
    return flags


@entry_point
def main(argv=None):
    args = parse_args(argv)
    if args.insert:
        batch = ["--batch_size", str(args.batch_size)] if args.batch_size else []
        insert.main(
            ["--data_path", args.data_path, "--embedding_path", args.embedding_path, *batch, *milvus_flags(args)]
        )
    if not args.search:
        return None
    with MilvusSearcher(load_config(args)) as searcher:
        try:
            hits = searcher.search_by_id(args.index, args.top_k)
        except SearchError as e:
            fail(str(e))
    for hit in hits:
        print(f"hit: (distance: {hit.score}, id: {hit.id}), text field: {hit.text}")
    return hits


if __name__ == "__main__":
    main()
