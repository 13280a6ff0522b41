"""Removes papers by their own ids from a collection keyed by paper ids (a living index, recall/milvus/update.py).

    python -m recall.milvus.delete --ids csl-00012 csl-00013 --uri output/pipeline/sample/milvus/neural_search.db
    python -m recall.milvus.delete --ids_file retracted.txt --uri ...      # one id a line

Nothing else is touched; an id the collection does not hold is named and skipped (running it again is harmless).
Searches see the deletion as soon as the command returns (the rows are flushed). From Python: SearchSystem.delete(ids);
over HTTP: POST /api/delete on a service started with --allow_delete.
"""

import argparse

from ns_common.cli import entry_point, fail
from ns_common.io import check_file
from ns_common.utils import logger
from recall.milvus import store, update
from recall.milvus.config import add_config_args, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", help="the papers' own ids (papers.jsonl's id)")
    which.add_argument("--ids_file", help="a file of paper ids, one a line (empty lines skipped)")
    add_config_args(parser)
    return parser.parse_args(argv)


def read_ids(args) -> list:
    if args.ids:
        return [i.strip() for i in args.ids if i.strip()]
    with open(check_file(args.ids_file, "--ids_file"), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


@entry_point
def main(argv=None):
    args = parse_args(argv)
    config = load_config(args)
    ids = read_ids(args)
    if not ids:
        fail(f"--ids_file {args.ids_file}: no id in it")
    client = store.connect(config, must_exist=True)
    try:
        with store.milvus_errors(config, "delete"):
            info = store.describe(client, config)
            if info is None:
                fail(f"no collection {config.collection!r} at {config.uri}")
            update.check_deletable(info, config)
            client.load_collection(config.collection)
            deleted = update.delete_papers(client, config, info, ids)
            count = store.count_entities(client, config)
    finally:
        store.close(client, config)
    missing = [i for i in dict.fromkeys(ids) if i not in set(deleted)]
    if missing:
        logger.warning(
            f"{len(missing)} of the ids are not in collection {config.collection}: {', '.join(missing[:10])}"
            + (" ..." if len(missing) > 10 else "")
        )
    logger.info(f"collection {config.collection} at {config.uri}: deleted {len(deleted)} papers, {count} remain")
    return deleted


if __name__ == "__main__":
    main()
