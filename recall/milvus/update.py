"""A living index: a collection keyed by paper ids (primary_key paper_id) kept current without a rebuild.

    python -m recall.milvus.insert --data_path new_papers.jsonl --model_dir export/recall --uri ...   # add / change
    python -m recall.milvus.delete --ids csl-00012 csl-00013 --uri ...                                 # remove

insert of a records file into such a collection writes only what differs, in two passes over the file:

    plan    every record's key (store.paper_key of its id; two ids with one key refused) and the stored row of that
            key: absent -> new, another title -> embedded again, other fields only -> rewritten with its stored
            vector, the same -> left alone. Nothing is written before the plan is complete.
    write   the rows of the plan, upserted batch by batch: vector, title, BM25 field and record fields of a paper go
            in one row, so no paper is ever stored half-written (a vector without its text, or the reverse).

A run killed anywhere leaves each paper either as it was or as the file says; the same command again plans what is
still missing or different and writes only that (it rolls forward: nothing to resume by hand). Papers the file does
not hold are never touched: removing is delete's job. The vectors come from the recall model (--model_dir: only the
papers to write are embedded; the collection's model must be this one) or from feature_extract.py's .npy, whose row
i is line i of the file it embedded (--embedding_path: the rows of the papers to write are read).
"""

from dataclasses import dataclass, field

import numpy as np

from ns_common.bm25 import lexical_text
from ns_common.errors import BadInputError, ConfigError
from ns_common.utils import logger
from recall.milvus import store
from recall.milvus.data import iter_record_chunks

PLAN_BATCH = 1000  # keys looked up in one get


@dataclass
class Plan:
    """What an update writes, by 0-based corpus line (the .npy row of feature_extract's output)."""

    new: list = field(default_factory=list)  # papers the collection lacks
    changed_text: list = field(default_factory=list)  # papers whose title changed: embedded again
    changed_fields: dict = field(default_factory=dict)  # line -> stored vector: only the other fields changed
    unchanged: int = 0
    empty: int = 0  # lines without a paper (empty or malformed: counted by the reader's warning)

    @property
    def embed(self) -> list:
        """The lines whose vectors are computed (or read from the .npy): new papers and changed titles."""
        return sorted(self.new + self.changed_text)

    @property
    def lines(self) -> set:
        return set(self.new) | set(self.changed_text) | set(self.changed_fields)


def count_ids(data_path) -> tuple:
    """(papers: lines holding a record with a title, of them with an id) of a corpus file (a title file: (n, 0))."""
    papers = with_id = 0
    for _, records in iter_record_chunks(data_path, 65536, report=False):
        for record in records:
            papers += bool(record.title)
            with_id += bool(record.title and record.paper_id)
    return papers, with_id


def _same_fields(row, record) -> bool:
    wanted = record.fields()
    return all(
        (list(row.get(name) or []) if name == "keywords" else row.get(name)) == wanted[name]
        for name in store.RECORD_FIELDS
    )


def plan_update(client, config, data_path, created=False) -> Plan:
    """The Plan of an update of config.collection from data_path (records with ids); created: the collection was
    created by this run (everything is new, nothing is looked up). BadInputError for a paper without an id, or two
    ids with one primary key (in the file, or a stored paper's)."""
    plan, keys = Plan(), {}
    for first, records in iter_record_chunks(data_path, PLAN_BATCH):
        batch = []
        for line, record in enumerate(records, first):
            if not record.title:
                plan.empty += 1
                continue
            if not record.paper_id:
                raise BadInputError(
                    f"--data_path {data_path}:{line + 1}: a paper without an id; collection {config.collection} at "
                    f"{config.uri} is keyed by paper ids (give every record its id)"
                )
            key = store.paper_key(record.paper_id)
            if key in keys:
                raise BadInputError(
                    f"--data_path {data_path}:{line + 1}: paper id {record.paper_id!r} and the id of line "
                    f"{keys[key][0] + 1}, {keys[key][1]!r}, give one primary key (store.paper_key): rename one"
                )
            keys[key] = (line, record.paper_id)
            batch.append((line, key, record))
        if created:
            plan.new.extend(line for line, _, _ in batch)
            continue
        stored = {
            int(row["id"]): row
            for row in client.get(
                config.collection,
                ids=[key for _, key, _ in batch],
                output_fields=[store.TEXT_FIELD, *store.RECORD_FIELDS],
            )
        }
        for line, key, record in batch:
            row = stored.get(key)
            if row is None:
                plan.new.append(line)
            elif row["paper_id"] != record.paper_id:
                raise BadInputError(
                    f"--data_path {data_path}:{line + 1}: paper id {record.paper_id!r} gives the primary key of stored "
                    f"paper {row['paper_id']!r} (store.paper_key): rename one"
                )
            elif row[store.TEXT_FIELD] != record.title[: config.text_max_length]:
                plan.changed_text.append(line)
            elif not _same_fields(row, record):
                plan.changed_fields[line] = key
            else:
                plan.unchanged += 1
    # the papers whose fields alone changed keep their stored vector: read before anything is written
    by_key = {key: line for line, key in plan.changed_fields.items()}
    keys_ = list(by_key)
    for start in range(0, len(keys_), PLAN_BATCH):
        for row in client.get(
            config.collection, ids=keys_[start : start + PLAN_BATCH], output_fields=[store.DENSE_FIELD]
        ):
            plan.changed_fields[by_key[int(row["id"])]] = np.asarray(row[store.DENSE_FIELD], dtype=np.float32)
    return plan


def write_plan(client, config, info, data_path, plan, vectors_of, created=False, max_batches=None) -> tuple:
    """Upserts the rows of plan batch by batch (insert into a collection created by this run); vectors_of(lines,
    titles) -> float32 [len(lines), dim], the vectors of new and retitled papers. Returns (rows written, stopped by
    max_batches). Nothing is flushed here."""
    write = client.insert if created else client.upsert
    wanted, embed = plan.lines, set(plan.embed)
    total, written, batches = len(wanted), 0, 0
    pending = []

    def flush_batch():
        nonlocal written, batches
        to_embed = [(line, record) for line, record in pending if line in embed]
        computed = vectors_of([line for line, _ in to_embed], [record.title for _, record in to_embed])
        vectors = dict(zip((line for line, _ in to_embed), computed))
        rows = []
        for line, record in pending:
            vector = vectors[line] if line in vectors else plan.changed_fields[line]
            row = {
                "id": store.paper_key(record.paper_id),
                store.TEXT_FIELD: record.title[: config.text_max_length],
                store.DENSE_FIELD: np.asarray(vector, dtype=np.float32),
                **record.fields(),
            }
            if info.analyzer == "char_ngram":
                row[store.LEXICAL_FIELD] = lexical_text(record.title, store.lexical_max_chars(config))
            rows.append(row)
        write(config.collection, rows, partition_name=config.partition or "")
        written += len(rows)
        batches += 1
        logger.info(f"wrote batch {batches}: {written}/{total} papers")
        pending.clear()

    batch_size = store.rows_per_request(config, info.dim)
    for first, records in iter_record_chunks(data_path, batch_size, report=False):
        for line, record in enumerate(records, first):
            if line not in wanted:
                continue
            if max_batches is not None and batches == max_batches:
                return written, True
            pending.append((line, record))
            if len(pending) == batch_size:
                flush_batch()
    if pending:
        if max_batches is not None and batches == max_batches:
            return written, True
        flush_batch()
    return written, False


def npy_vectors(embeddings):
    """vectors_of for write_plan from feature_extract's .npy: row i is line i of the corpus file it embedded."""

    def vectors_of(lines, titles):
        if not lines:  # a batch of papers whose other fields alone changed: nothing to read
            return np.zeros((0, embeddings.shape[1]), dtype=np.float32)
        return np.asarray(embeddings[np.asarray(lines, dtype=np.int64)], dtype=np.float32)

    return vectors_of


def model_vectors(encoder):
    """vectors_of for write_plan from the recall model: only the papers to write are embedded (as documents)."""

    def vectors_of(lines, titles):
        return encoder.encode(titles, role="doc") if titles else np.zeros((0, encoder.dim), dtype=np.float32)

    return vectors_of


def check_deletable(info, config) -> None:
    """ConfigError unless the collection is keyed by paper ids: in one keyed by corpus lines an id is a line, and a
    deleted line would only look like a half-finished insert."""
    if info.key != store.KEY_PAPER:
        raise ConfigError(
            f"collection {config.collection} at {config.uri} is keyed by corpus lines, not paper ids: rebuild it from "
            "paper records with ids with --primary_key paper_id (python -m recall.milvus.insert ... --drop "
            "--primary_key paper_id) to delete papers by id"
        )


def delete_papers(client, config, info, paper_ids) -> list:
    """Deletes the stored papers of paper_ids (their own ids) and flushes; returns the ids that were there (the
    others were not: deleting is idempotent)."""
    check_deletable(info, config)
    ids = [str(i) for i in paper_ids]
    keys = {store.paper_key(i): i for i in ids}
    found = [
        keys[int(row["id"])]
        for start in range(0, len(ids), PLAN_BATCH)
        for row in client.get(config.collection, ids=list(keys)[start : start + PLAN_BATCH], output_fields=["paper_id"])
        if row["paper_id"] == keys[int(row["id"])]
    ]
    if found:
        client.delete(
            config.collection, ids=[store.paper_key(i) for i in found], partition_name=config.partition or None
        )
        client.flush(config.collection)
    return found
