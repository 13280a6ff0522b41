"""Counts the learned ranking's lexical statistics again over what the collection holds now (a living index: papers
added, changed or deleted since search/fit.py counted them over its corpus file).

    python -m search.refresh_stats --ranking_dir output/pipeline/sample/export/ranking \
        --uri output/pipeline/sample/milvus/neural_search.db

The lexical features (search/features.py) read each tokenisation's document frequencies and mean document length,
which fit counts once; as papers arrive they drift, and a paper's jieba words are cached in them (new titles are cut
at query time instead). This rewrites the ranking directory's lexical_stats.json from the collection's titles and its
checksum in ranking.json; the LightGBM models stay as fitted (their inputs are the same features). Each file is
replaced whole; killed between the two, the ranking is refused in one line until this command runs again.
"""

import argparse
import json
import os
import time

from ns_common.cli import entry_point
from ns_common.errors import ConfigError
from ns_common.io import atomic_write, weights_fingerprint
from ns_common.utils import logger
from recall.milvus import store
from recall.milvus.config import add_config_args, load_config
from search.features import LexicalStats
from search.ranking import FORMAT, RANKING_FILE


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranking_dir", required=True, help="search/fit.py's output directory")
    add_config_args(parser)
    return parser.parse_args(argv)


def collection_titles(searcher) -> list:
    """Every stored title, in primary-key order (the same rows give the same statistics and sha1)."""
    with store.milvus_errors(searcher.config, "reading the titles"):
        rows = searcher.client.query_iterator(
            searcher.config.collection,
            batch_size=16384,
            output_fields=[store.TEXT_FIELD],
            partition_names=store.partition_names(searcher.config),
        )
        found = []
        try:
            while batch := rows.next():
                found.extend((int(row["id"]), row[store.TEXT_FIELD]) for row in batch)
        finally:
            rows.close()
    return [text for _, text in sorted(found)]


def refresh(ranking_dir, searcher) -> tuple:
    """Rewrites ranking_dir's lexical statistics from the searcher's collection; returns (old, new) LexicalStats
    (the same object twice when nothing changed: nothing is written)."""
    path = os.path.join(ranking_dir, RANKING_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        stats_file = spec["stats_file"]
        valid = spec.get("format") == FORMAT and os.path.basename(stats_file) == stats_file and "sha1" in spec
    except (OSError, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise ConfigError(f"--ranking_dir {ranking_dir}: no ranking written by search.fit of this version ({path})")
    stats_path = os.path.join(ranking_dir, stats_file)
    try:
        old = LexicalStats.load(stats_path)
    except (OSError, ValueError, KeyError):
        old = None
    stats = LexicalStats.from_texts(collection_titles(searcher))
    if old is not None and (old.n_docs, old.sha1) == (stats.n_docs, stats.sha1):
        return old, old
    staged = f"{stats_path}.new"
    stats.save(staged)
    os.replace(staged, stats_path)
    spec["sha1"][stats_file] = weights_fingerprint(stats_path)
    spec["stats_refreshed"] = {
        "documents": stats.n_docs,
        "sha1": stats.sha1,
        "collection": searcher.config.collection,
        "uri": searcher.config.uri,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with atomic_write(path) as f:
        json.dump(spec, f, indent=2, ensure_ascii=False)
    return old, stats


@entry_point
def main(argv=None):
    from recall.milvus.search import MilvusSearcher

    args = parse_args(argv)
    with MilvusSearcher(load_config(args)) as searcher:
        old, new = refresh(args.ranking_dir, searcher)
    if old is new:
        logger.info(
            f"{args.ranking_dir}: the lexical statistics are those of the collection already ({new.n_docs} papers)"
        )
    else:
        before = f"{old.n_docs} papers" if old is not None else "unreadable"
        logger.info(f"{args.ranking_dir}: lexical statistics counted again over {new.n_docs} papers (were: {before})")
    return new.n_docs


if __name__ == "__main__":
    main()
