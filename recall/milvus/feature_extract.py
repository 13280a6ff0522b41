"""Embeds every line of a corpus file with the recall model -> corpus_embedding.npy (row i = line i).

    python recall/milvus/feature_extract.py --model_dir output/pipeline/sample/export/recall \
        --corpus_file data/sample/milvus/milvus_data.csv --output_path output/milvus

The corpus is read and embedded in chunks of --chunk_size lines; each finished chunk is saved under
<output_path>/corpus_embedding.parts/, so a run that is killed (or stopped by --max_chunks) continues
from its last finished chunk when the same command is run again. At the end the chunks are joined into
corpus_embedding.npy (written through a memory map: the whole matrix never sits in memory) and removed.

Under `python -m paddle.distributed.launch --nproc_per_node N` (e.g. one process per GPU) process r
embeds chunks r, r+N, ...; process 0 waits for all of them and joins them.
"""

import argparse
import contextlib
import glob
import json
import math
import os
import shutil
import time

import numpy as np
from tqdm import tqdm

from ns_common.cli import check_outputs, entry_point, fail, model_inputs, replaceable_dir
from ns_common.errors import BadInputError
from ns_common.io import atomic_write, weights_fingerprint
from ns_common.utils import is_main_process, logger, rank, world_size
from recall.milvus.data import corpus_summary, iter_corpus_chunks
from recall.milvus.model import TextEncoder, add_model_args, check_model_args

EMBEDDING_FILE = "corpus_embedding.npy"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_file", required=True, help="one document a line (line number = doc id)")
    parser.add_argument(
        "--output_path",
        default="output/milvus",
        help=f"output directory (gets {EMBEDDING_FILE}) or a path ending in .npy",
    )
    parser.add_argument("--chunk_size", type=int, default=100000, help="lines embedded and saved together")
    parser.add_argument(
        "--max_chunks",
        type=int,
        default=None,
        help="stop after this many chunks in this run (continue later with the same command)",
    )
    add_model_args(parser, batch_size=64)
    args = parser.parse_args(argv)
    check_model_args(args)
    if args.chunk_size < 1 or (args.max_chunks is not None and args.max_chunks < 1):
        fail("--chunk_size and --max_chunks must be positive")
    if not os.path.isfile(args.corpus_file):
        fail(f"--corpus_file {args.corpus_file}: file not found")
    check_outputs(
        files=[("output_path", output_file(args.output_path))],
        inputs=[("corpus_file", args.corpus_file), *model_inputs(args)],
        replaced_dirs=[("output_path", parts_dir_of(output_file(args.output_path)), PARTS_FILES)],
    )
    return args


# what a chunk directory (<output>.parts) holds, its marker first: one holding anything else is not replaced
PARTS_FILES = ("manifest.json", "chunk_*.npy")


def parts_dir_of(npy_path):
    """The directory of an embedding file's finished chunks while it is computed: corpus_embedding.parts."""
    return npy_path[: -len(".npy")] + ".parts"


def output_file(output_path):
    return output_path if output_path.endswith(".npy") else os.path.join(output_path, EMBEDDING_FILE)


def provenance_file(npy_path):
    """The JSON beside an embedding file that says what computed it: corpus_embedding.npy -> corpus_embedding.json."""
    return os.path.splitext(npy_path)[0] + ".json"


def read_provenance(npy_path):
    """feature_extract's record of an embedding file ({"model": weights sha1, "corpus": {"documents", "sha1"}, ...}),
    or None when there is none (an older run, or an array made elsewhere) or it does not parse."""
    try:
        with open(provenance_file(npy_path), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_provenance(npy_path, args, corpus, dim, probe=None):
    """Written after the .npy: the model's weights sha1 and the corpus (documents, sha1 as the collection stores it),
    so insert.py refuses another corpus (a shuffled one of the same length too) and the collection knows its model."""
    model = args.model_dir or args.params_path
    record = {
        "embedding_file": os.path.basename(npy_path),
        "rows": corpus[0],
        "dim": dim,
        "model": weights_fingerprint(model),
        "model_path": os.path.abspath(model),
        "corpus": {"documents": corpus[0], "sha1": corpus[1], "file": os.path.abspath(args.corpus_file)},
        "max_seq_length": args.max_seq_length,
        "probe": probe,
    }
    with atomic_write(provenance_file(npy_path)) as f:
        json.dump(record, f, indent=2, ensure_ascii=False)
    return record


def run_manifest(args, n_docs):
    """What a finished chunk depends on: a resumed run must match it, or its chunks are stale."""
    model = args.model_dir or args.params_path
    model_files = glob.glob(os.path.join(model, "*")) if os.path.isdir(model) else [model]
    stat = os.stat(args.corpus_file)
    return {
        "corpus_file": os.path.abspath(args.corpus_file),
        "corpus_bytes": stat.st_size,
        "corpus_mtime": stat.st_mtime,
        "n_docs": n_docs,
        "chunk_size": args.chunk_size,
        "max_seq_length": args.max_seq_length,
        "model": os.path.abspath(model),
        "model_mtime": max(os.stat(f).st_mtime for f in model_files),
        "output_emb_size": args.output_emb_size,
    }


def prepare_parts_dir(parts_dir, manifest):
    """Returns the chunk numbers already finished by an earlier run with the same inputs."""
    manifest_file = os.path.join(parts_dir, "manifest.json")
    if os.path.isfile(manifest_file):
        with open(manifest_file, encoding="utf-8") as f:
            if json.load(f) == manifest:
                done = sorted(int(os.path.basename(p)[6:12]) for p in glob.glob(os.path.join(parts_dir, "chunk_*.npy")))
                return set(done)
        logger.warning(f"{parts_dir}: chunks of an earlier run with another corpus/model/settings; starting over")
    why = replaceable_dir(parts_dir, PARTS_FILES)  # checked again: only chunks this command wrote are removed
    if why:
        raise BadInputError(f"{parts_dir}: {why}")
    shutil.rmtree(parts_dir, ignore_errors=True)
    os.makedirs(parts_dir)
    with open(manifest_file, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    return set()


def wait_for_manifest(parts_dir, manifest, timeout_s=600):
    """Ranks > 0: the chunks already finished, once rank 0 has (re)prepared the parts directory."""
    manifest_file = os.path.join(parts_dir, "manifest.json")
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with open(manifest_file, encoding="utf-8") as f:
                if json.load(f) == manifest:
                    return {int(os.path.basename(p)[6:12]) for p in glob.glob(os.path.join(parts_dir, "chunk_*.npy"))}
        except (OSError, ValueError):
            pass  # not written yet, or being written
        time.sleep(1)
    fail(f"rank {rank()}: rank 0 did not prepare {parts_dir} within {timeout_s}s")


def wait_for_chunks(parts_dir, n_chunks, idle_timeout_s=3600):
    """Rank 0 under a multi-process launch: blocks until every chunk file exists (the other ranks' too)."""
    last_count, last_change = -1, time.time()
    while True:
        count = sum(os.path.isfile(chunk_path(parts_dir, i)) for i in range(n_chunks))
        if count == n_chunks:
            return
        if count != last_count:
            last_count, last_change = count, time.time()
        elif time.time() - last_change > idle_timeout_s:
            fail(
                f"{parts_dir}: {count} of {n_chunks} chunks after {idle_timeout_s}s without progress; did another rank fail? "
                "Run the same command again to finish"
            )
        time.sleep(1)


def chunk_path(parts_dir, index):
    return os.path.join(parts_dir, f"chunk_{index:06d}.npy")


def encode_by_length(encoder, texts, progress):
    """Embeds texts in batches of similar length (less padding), returns rows in the input order."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    vectors = None
    for start in range(0, len(texts), encoder.batch_size):
        ids = order[start : start + encoder.batch_size]
        batch = encoder.encode([texts[i] for i in ids], role="doc")
        if vectors is None:
            vectors = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
        vectors[ids] = batch
        progress.update(len(ids))
    return vectors


def join_chunks(parts_dir, n_chunks, n_docs, path):
    """Concatenates the chunk files into one .npy through a memory map, then swaps it in atomically."""
    dim = np.load(chunk_path(parts_dir, 0), mmap_mode="r").shape[1]
    tmp = path + ".tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_docs, dim))
    row = 0
    for index in range(n_chunks):
        chunk = np.load(chunk_path(parts_dir, index), mmap_mode="r")
        if chunk.shape[1] != dim:
            fail(
                f"{chunk_path(parts_dir, index)} has {chunk.shape[1]} columns, chunk 0 has {dim}: delete {parts_dir} and rerun"
            )
        out[row : row + len(chunk)] = chunk
        row += len(chunk)
    if row != n_docs:
        fail(f"{parts_dir}: chunks hold {row} rows for {n_docs} corpus lines; delete the directory and rerun")
    out.flush()
    del out
    os.replace(tmp, path)
    return dim


@entry_point
def main(argv=None):
    args = parse_args(argv)
    path = output_file(args.output_path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    n_docs, corpus_sha1, n_texts = corpus_summary(args.corpus_file)
    if n_docs == 0:
        fail(f"--corpus_file {args.corpus_file} is empty")
    if n_texts == 0:
        raise BadInputError(
            f"--corpus_file {args.corpus_file}: no line holds text (every line empty, not UTF-8 or binary)"
        )
    n_chunks = math.ceil(n_docs / args.chunk_size)
    parts_dir = parts_dir_of(path)
    manifest = run_manifest(args, n_docs)
    if args.device == "gpu" and world_size() > 1:
        args.device = f"gpu:{os.environ.get('FLAGS_selected_gpus', rank())}"  # the GPU the launcher gave this process  # noqa: SIM112
    encoder = TextEncoder.from_args(args)
    encoder.dim  # noqa: B018 - a model that gives no vectors (the reranker's export) fails here, before any file is written
    done = prepare_parts_dir(parts_dir, manifest) if is_main_process() else wait_for_manifest(parts_dir, manifest)
    try:
        return embed_and_join(args, encoder, path, parts_dir, n_docs, n_chunks, done)
    except BaseException:
        if is_main_process() and not glob.glob(os.path.join(parts_dir, "chunk_*.npy")):
            shutil.rmtree(parts_dir, ignore_errors=True)  # nothing to resume: leave no manifest behind
        raise


def embed_and_join(args, encoder, path, parts_dir, n_docs, n_chunks, done):
    # one process: every chunk; under a multi-process launch: every world_size-th chunk from its rank
    todo = {i for i in range(rank(), n_chunks, world_size()) if i not in done}
    if done and is_main_process():
        logger.info(f"resuming: {len(done)} of {n_chunks} chunks already embedded in {parts_dir}")
    start = time.time()
    docs_this_run = chunks_this_run = 0
    done_docs = sum(min(args.chunk_size, n_docs - i * args.chunk_size) for i in done)
    with tqdm(total=n_docs, initial=done_docs, desc="embedding", unit="doc", disable=not is_main_process()) as progress:
        first_line = min(todo) * args.chunk_size if todo else n_docs
        for first_id, texts in iter_corpus_chunks(args.corpus_file, args.chunk_size, start_line=first_line):
            index = first_id // args.chunk_size
            if index not in todo:
                continue
            if args.max_chunks is not None and chunks_this_run == args.max_chunks:
                break
            vectors = encode_by_length(encoder, texts, progress)
            if not np.isfinite(vectors).all():
                line = first_id + int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0]) + 1
                fail(
                    f"the model gives NaN/inf for line {line} of {args.corpus_file}: check the model (a training run that diverged?)"
                )
            tmp = chunk_path(parts_dir, index) + ".tmp.npy"
            np.save(tmp, vectors)
            os.replace(tmp, chunk_path(parts_dir, index))  # a kill never leaves a half-written chunk
            done.add(index)
            docs_this_run += len(texts)
            chunks_this_run += 1
    seconds = time.time() - start
    speed = docs_this_run / max(seconds, 1e-9)
    if not is_main_process():
        logger.info(f"rank {rank()}: embedded {chunks_this_run} chunks ({docs_this_run} docs, {speed:.0f} docs/s)")
        return None
    if world_size() > 1 and args.max_chunks is None:
        wait_for_chunks(parts_dir, n_chunks)
        done = set(range(n_chunks))
    if len(done) < n_chunks:
        logger.info(
            f"stopped after {chunks_this_run} chunks as asked (--max_chunks): {len(done)} of {n_chunks} chunks "
            f"done ({docs_this_run} docs, {speed:.0f} docs/s); run the same command again to continue"
        )
        return None
    with contextlib.suppress(FileNotFoundError):
        os.remove(provenance_file(path))  # an old record never describes the new array, not even for a moment
    dim = join_chunks(parts_dir, n_chunks, n_docs, path)
    write_provenance(path, args, corpus_summary(args.corpus_file)[:2], dim, encoder.probe)
    shutil.rmtree(parts_dir)
    who = "this run" if world_size() == 1 else f"this run by rank 0 of {world_size()} processes"
    logger.info(
        f"embedded {n_docs} docs (dim {dim}, {encoder.kind} model): {docs_this_run} {who} in {seconds:.1f}s "
        f"= {speed:.0f} docs/s -> {path}"
    )
    return path


if __name__ == "__main__":
    main()
