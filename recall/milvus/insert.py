"""Inserts corpus_embedding.npy + its corpus file into a Milvus collection (PaddleNLP's
`milvus_ann_search.py --insert`).

    python recall/milvus/insert.py --data_path data/sample/milvus/milvus_data.csv \
        --embedding_path output/milvus/corpus_embedding.npy [--uri http://localhost:19530 --token root:Milvus]

Entity id = 0-based line number of the corpus = row of the .npy. Rows are upserted by id, so running
the command again never duplicates anything. --resume skips the batches the collection already holds
in full (after a killed run, or one stopped by --max_batches); --drop deletes the collection first.

A collection keyed by paper ids (--primary_key paper_id when it is created from records with ids) is a living index:
insert then writes only the papers of the file that are new or changed, with the vectors of --embedding_path (the
.npy of this file) or of --model_dir (only those papers embedded), and a killed run rolls forward when run again
(recall/milvus/update.py).
"""

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ns_common.bm25 import lexical_text
from ns_common.cli import entry_point, fail
from ns_common.errors import BadInputError, ModelMismatchError
from ns_common.utils import logger
from recall.milvus import store, update
from recall.milvus.config import add_config_args, load_config
from recall.milvus.data import corpus_summary, count_lines, iter_record_chunks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data_path",
        "--corpus_file",
        dest="data_path",
        required=True,
        help="corpus file the embeddings were extracted from: one title a line, or paper records (.jsonl: title and "
        "the fields to filter on, ns_common/records.py) with the same titles in the same order",
    )
    parser.add_argument(
        "--embedding_path",
        default=None,
        help="feature_extract.py's output for this file (row i = line i; default output/milvus/corpus_embedding.npy)",
    )
    parser.add_argument(
        "--model_dir",
        default=None,
        help="instead of --embedding_path, for a collection keyed by paper ids: the exported recall model, which "
        "embeds only the papers new or changed (the collection's model must be this one)",
    )
    parser.add_argument("--max_seq_length", type=int, default=64, help="with --model_dir: tokens per title")
    parser.add_argument("--device", default="cpu", help="with --model_dir: cpu, gpu or gpu:N")
    parser.add_argument(
        "--drop", action="store_true", help="drop the collection first and rebuild it (on purpose only)"
    )
    parser.add_argument("--resume", action="store_true", help="skip batches already complete in the collection")
    parser.add_argument(
        "--max_batches",
        type=int,
        default=None,
        help="stop after inserting this many batches (continue later with --resume)",
    )
    add_config_args(parser)
    args = parser.parse_args(argv)
    if args.model_dir and args.embedding_path:
        fail("--model_dir and --embedding_path are alternatives: give one")
    if args.model_dir and not os.path.isdir(args.model_dir):
        fail(f"--model_dir {args.model_dir}: no such directory")
    if not args.model_dir:
        args.embedding_path = args.embedding_path or "output/milvus/corpus_embedding.npy"
    for path, flag in ((args.data_path, "--data_path"), (args.embedding_path, "--embedding_path")):
        if path is not None and not os.path.isfile(path):
            fail(f"{flag} {path}: file not found")
    if args.max_batches is not None and args.max_batches < 1:
        fail("--max_batches must be positive")
    if args.drop and args.resume:
        fail("--drop and --resume contradict each other: --drop rebuilds from scratch")
    return args


def load_embeddings(path, corpus_path, config):
    """The .npy as a read-only memory map, checked against the corpus and --dim before any connection."""
    if os.path.getsize(path) == 0:
        raise BadInputError(f"--embedding_path {path}: empty file, not a .npy array (feature_extract.py writes it)")
    try:
        embeddings = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as e:
        fail(f"--embedding_path {path}: not a .npy array ({e})")
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or not np.issubdtype(embeddings.dtype, np.floating):
        fail(
            f"--embedding_path {path}: expected a non-empty [n_docs, dim] float array, found {embeddings.dtype} {embeddings.shape}"
        )
    n_docs, dim = embeddings.shape
    if config.dim is not None and config.dim != dim:
        fail(
            f"--embedding_path {path} holds {dim}-dim vectors but dim is set to {config.dim} (--dim / config); they must agree"
        )
    n_lines = count_lines(corpus_path)
    if n_lines != n_docs:
        fail(
            f"--data_path {corpus_path} has {n_lines} lines but {path} has {n_docs} rows: extract the embeddings of this corpus again"
        )
    for start in range(0, n_docs, 65536):  # a NaN/inf row would be stored and never found: refuse, reading in blocks
        finite = np.isfinite(embeddings[start : start + 65536]).all(axis=1)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            fail(
                f"--embedding_path {path}: row {row} (corpus line {row + 1}) holds NaN or inf; nothing inserted: "
                "extract the embeddings again (feature_extract.py)"
            )
    return embeddings


def check_provenance(embedding_path, data_path, corpus):
    """{"model": weights sha1, "probe": its probe vector} of the model that computed the embeddings, from
    feature_extract's record beside them (None
    without one: an older run or an array made elsewhere); BadInputError when the record names another corpus than
    data_path's (documents, sha1): row i would be stored as the vector of another document, silently."""
    from recall.milvus.feature_extract import provenance_file, read_provenance

    record = read_provenance(embedding_path)
    if record is None:
        logger.warning(
            f"--embedding_path {embedding_path}: no {os.path.basename(provenance_file(embedding_path))} beside it "
            "(feature_extract.py writes one): cannot check that it is the embedding of this corpus, nor record its model"
        )
        return None
    built = record.get("corpus") if isinstance(record.get("corpus"), dict) else {}
    if built.get("sha1") and corpus and built["sha1"] != corpus[1]:
        raise BadInputError(
            f"--embedding_path {embedding_path} embeds another corpus ({built.get('documents')} documents, sha1 {str(built['sha1'])[:12]}, "
            f"{built.get('file')}) than --data_path {data_path} ({corpus[0]} documents, sha1 {corpus[1][:12]}): run "
            f"python recall/milvus/feature_extract.py --corpus_file {data_path} ... for this corpus first"
        )
    model = record.get("model") if isinstance(record.get("model"), str) else None
    probe = record.get("probe") if isinstance(record.get("probe"), list) else None
    return {"model": model, "probe": probe} if model else None


def open_collection(client, config, dim, drop, n_rows=None, corpus=None, model=None, facets=None, key=store.KEY_LINE):
    """Creates the collection (or checks the existing one) and loads it; returns (CollectionInfo, created now). key:
    how a new collection names its papers (store.KEY_LINE, store.KEY_PAPER)."""
    engine = store.engine(client)
    if drop and client.has_collection(config.collection):
        client.drop_collection(config.collection)
        logger.info(f"dropped collection {config.collection} (--drop)")
    info = store.describe(client, config)
    created = info is None
    if created:
        with_bm25 = config.bm25 and engine.bm25
        if config.bm25 and not with_bm25:
            logger.warning(
                f"{engine.name} at {config.uri} has no BM25 function (needs Milvus >= 2.5): "
                "the collection is dense only (--mode bm25 / hybrid unavailable)"
            )
        model = model or {}
        info = store.create_collection(
            client, config, dim, with_bm25, n_rows, corpus, model.get("model"), model.get("probe"), facets, key
        )
        settings = ", ".join(f"{k} {v}" for k, v in info.index_settings.items())
        logger.info(
            f"created collection {config.collection} on {engine.name} (dim {dim}, {info.index_type}"
            f"{' ' + settings if settings else ''}/{config.metric_type}"
            f"{', BM25 ' + config.analyzer if with_bm25 else ', dense only'}, keyed by {key.replace('_', ' ')}s) "
            f"at {config.uri}"
        )
    elif info.dim != dim:
        fail(
            f"collection {config.collection} at {config.uri} holds {info.dim}-dim vectors, the embeddings are {dim}-dim: "
            "use the model the collection was built with, another --collection, or --drop to rebuild it"
        )
    elif store.analyzer_mismatch(info, config):
        fail(store.analyzer_mismatch(info, config))
    elif store.corpus_mismatch(info, config, corpus):
        fail(store.corpus_mismatch(info, config, corpus))
    elif model and store.model_mismatch(
        info, config, model["model"], "the model of these embeddings", lambda: model["probe"] or []
    ):
        raise ModelMismatchError(
            store.model_mismatch(info, config, model["model"], "the model of these embeddings").replace(
                ", or --allow_model_mismatch to search it anyway", ""
            )
        )
    store.check_partition(client, config, create=True)
    client.load_collection(config.collection)
    return info, created


@dataclass
class InsertStats:
    count: int | None  # entities in the collection at the end; None when stopped by max_batches
    inserted: int  # rows sent this run
    skipped: int  # rows of batches --resume found complete
    insert_seconds: float
    index_seconds: float  # flush + index build (+ on a server, loading the indexed segments) after the last insert
    index_type: str = ""  # the dense index the collection holds


def insert_corpus(
    client,
    config,
    data_path,
    embeddings,
    drop=False,
    resume=False,
    max_batches=None,
    model=None,
    corpus=None,
    facets=None,
):
    """Upserts row i of embeddings with line i of data_path (a title, or a paper record with its fields) as entity i,
    batch by batch; returns InsertStats. model: {"model": weights sha1, "probe": probe vector} of the model that
    computed the embeddings (check_provenance), kept in the collection; corpus: data_path's (documents, sha1), facets:
    its records' filter values (data.corpus_facets), when already computed."""
    n_docs, dim = embeddings.shape
    if corpus is None or facets is None:  # one pass over the corpus for both
        facets = {}
        corpus = corpus_summary(data_path, facets)[:2]
    info, created = open_collection(client, config, dim, drop, n_docs, corpus, model, facets)
    # rows of a collection created by this run cannot exist yet: plain insert (no delete-by-id, ~1.7x faster
    # on Milvus Lite); anything else is upserted, so a rerun or a resumed run never duplicates an id
    write = client.insert if created else client.upsert
    inserted = skipped = truncated = batches_this_run = 0
    start = time.time()
    stopped = False
    # --resume: the batches the collection holds in full, asked before anything is written (no query runs over
    # rows of this run before they are flushed)
    complete = set()
    batch_size = store.rows_per_request(config, dim)
    for first in range(0, n_docs, batch_size) if resume else ():
        last = min(first + batch_size, n_docs)
        if store.count_entities(client, config, (first, last)) == last - first:
            complete.add(first)
    with tqdm(total=n_docs, desc="inserting", unit="doc") as progress:
        for first_id, records in iter_record_chunks(data_path, batch_size):
            texts = [record.title for record in records]
            end_id = first_id + len(texts)
            if first_id in complete:
                skipped += len(texts)
                progress.update(len(texts))
                continue
            if max_batches is not None and batches_this_run == max_batches:
                stopped = True
                break
            truncated += sum(len(t) > config.text_max_length for t in texts)
            vectors = np.asarray(embeddings[first_id:end_id], dtype=np.float32)
            rows = [
                {
                    "id": first_id + i,
                    store.TEXT_FIELD: record.title[: config.text_max_length],
                    store.DENSE_FIELD: vectors[i],
                    **record.fields(),
                }
                for i, record in enumerate(records)
            ]
            if info.analyzer == "char_ngram":  # the BM25 function reads the client's character n-grams
                for row, text in zip(rows, texts):
                    row[store.LEXICAL_FIELD] = lexical_text(text, store.lexical_max_chars(config))
            write(config.collection, rows, partition_name=config.partition or "")
            inserted += len(texts)
            batches_this_run += 1
            progress.update(len(texts))
    insert_seconds = time.time() - start
    # every write is flushed before anything searches it: milvus-lite 3.x searched unflushed rows ~30x slower, and a
    # server indexes only sealed segments (tests/conftest.py's flush_guard fails any test that searches unflushed rows)
    client.flush(config.collection)
    if truncated:
        logger.warning(
            f"{truncated} texts longer than text_max_length {config.text_max_length} characters were stored cut"
        )
    if stopped:
        return InsertStats(None, inserted, skipped, insert_seconds, 0.0, info.index_type)
    store.wait_for_index(client, config)
    store.wait_until_served(client, config)
    index_seconds = time.time() - start - insert_seconds
    return InsertStats(
        store.count_entities(client, config), inserted, skipped, insert_seconds, index_seconds, info.index_type
    )


def choose_key(client, config, data_path, drop) -> str:
    """How the collection names its papers: an existing collection's own key (store.CollectionInfo.key); a new one's
    from --primary_key, where paper_id needs an id on every paper of the file (else: corpus lines, said in one line)."""
    if client.has_collection(config.collection) and not drop:
        return store.describe(client, config).key
    if config.primary_key != store.KEY_PAPER:
        return store.KEY_LINE
    papers, with_id = update.count_ids(data_path)
    if with_id < papers:
        logger.warning(
            f"{data_path}: {papers - with_id} of its {papers} papers have no id (a title file has none): the collection "
            "is keyed by corpus lines (hits name papers by line; rebuilt whole when the corpus changes, no delete by "
            "id); paper records with an id each are keyed by their ids"
        )
        return store.KEY_LINE
    return store.KEY_PAPER


def update_collection(client, config, data_path, embeddings, model, encoder, drop=False, max_batches=None):
    """Creates or updates a collection keyed by paper ids from data_path (recall/milvus/update.py): plans, then writes
    only the new and changed papers; vectors from embeddings (the .npy of data_path) or encoder (a TextEncoder, only
    the papers to write embedded). Returns InsertStats (skipped: the papers found unchanged)."""
    if encoder is not None:
        model = {"model": encoder.fingerprint, "probe": encoder.probe}
    dim = embeddings.shape[1] if embeddings is not None else encoder.dim
    info, created = open_collection(client, config, dim, drop, count_lines(data_path), None, model, key=store.KEY_PAPER)
    if info.key != store.KEY_PAPER:
        raise BadInputError(f"collection {config.collection} at {config.uri} is keyed by corpus lines, not paper ids")
    plan = update.plan_update(client, config, data_path, created)
    logger.info(
        f"{data_path}: {len(plan.new)} new papers, {len(plan.changed_text)} with another title (embedded again), "
        f"{len(plan.changed_fields)} with other fields only, {plan.unchanged} unchanged"
    )
    vectors_of = update.npy_vectors(embeddings) if embeddings is not None else update.model_vectors(encoder)
    start = time.time()
    written, stopped = update.write_plan(client, config, info, data_path, plan, vectors_of, created, max_batches)
    insert_seconds = time.time() - start
    client.flush(config.collection)
    if stopped:
        return InsertStats(None, written, plan.unchanged, insert_seconds, 0.0, info.index_type)
    store.wait_for_index(client, config)
    store.wait_until_served(client, config)
    index_seconds = time.time() - start - insert_seconds
    return InsertStats(
        store.count_entities(client, config), written, plan.unchanged, insert_seconds, index_seconds, info.index_type
    )


@entry_point
def main(argv=None):
    args = parse_args(argv)
    config = load_config(args)
    embeddings = model = encoder = None
    if args.embedding_path:
        embeddings = load_embeddings(args.embedding_path, args.data_path, config)
    facets = {}
    n_lines, sha1, n_texts = corpus_summary(args.data_path, facets)
    if n_texts == 0:
        raise BadInputError(
            f"--data_path {args.data_path}: no line holds text (every line empty, not UTF-8, binary or not a paper record)"
        )
    corpus = (n_lines, sha1)
    if embeddings is not None:
        model = check_provenance(args.embedding_path, args.data_path, corpus)
    client = store.connect(config, replace_foreign=args.drop)
    with store.milvus_errors(config, "insert"):
        keyed_by_paper = choose_key(client, config, args.data_path, args.drop) == store.KEY_PAPER
        if args.model_dir and not keyed_by_paper:
            fail(
                f"--model_dir embeds the papers of a collection keyed by paper ids; collection {config.collection} is "
                "keyed by corpus lines: give feature_extract.py's .npy (--embedding_path), or create the collection "
                "with --primary_key paper_id from records with ids"
            )
        if args.model_dir:
            from recall.milvus.model import TextEncoder

            encoder = TextEncoder(model_dir=args.model_dir, max_seq_length=args.max_seq_length, device=args.device)
        if keyed_by_paper:
            stats = update_collection(
                client, config, args.data_path, embeddings, model, encoder, args.drop, args.max_batches
            )
        else:
            stats = insert_corpus(
                client,
                config,
                args.data_path,
                embeddings,
                args.drop,
                args.resume,
                args.max_batches,
                model,
                corpus,
                facets,
            )
    start = time.time()
    store.close(client, config)  # Milvus Lite first finishes its background compaction (merging segments)
    close_seconds = time.time() - start
    rate = stats.inserted / max(stats.insert_seconds, 1e-9)
    if stats.count is None:
        logger.info(
            f"stopped after {args.max_batches} batches as asked (--max_batches): {stats.inserted} rows inserted "
            f"({rate:.0f}/s); run again {'as it is' if keyed_by_paper else 'with --resume'} to continue"
        )
        return None
    present = "unchanged" if keyed_by_paper else "already present"
    logger.info(
        f"collection {config.collection} at {config.uri}: {stats.count} entities; inserted {stats.inserted} rows "
        f"({stats.skipped} {present}) in {stats.insert_seconds:.1f}s = {rate:.0f} rows/s; "
        f"{stats.index_type} index ready {stats.index_seconds:.1f}s after the last insert"
        + (f", compaction done {close_seconds:.1f}s later" if close_seconds > 1 else "")
    )
    if not keyed_by_paper and stats.count != n_lines:
        logger.warning(
            f"the collection holds {stats.count} entities for {n_lines} corpus lines "
            f"({'ids of an earlier, larger corpus remain: use --drop to rebuild' if stats.count > n_lines else 'some rows are missing'})"
        )
    return stats.count


if __name__ == "__main__":
    main()
