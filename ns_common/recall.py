"""Dense recall with a trained semantic encoder (the shared implementation of simcse/recall.py and
inbatch_negative/recall.py):

    python inbatch_negative/recall.py --model_name_or_path output/bootstrap/ernie \
        --params_path checkpoints/inbatch/model_best/model_state.pdparams --output_emb_size 256 \
        --corpus_file data/sample/recall/corpus.csv --similar_text_pair_file data/sample/recall/dev.csv \
        --recall_result_dir recall_result_dir --recall_num 50

Embeds every corpus document and every distinct query of the `query<TAB>doc` pair file, finds each
query's top --recall_num documents and writes `recall_result.txt`: `query<TAB>doc<TAB>score`,
recall_num rows a query, best first. Exact search (a matrix product) is the default and the ground
truth; `--index hnsw` uses an approximate HNSW index (faiss-cpu, in requirements.txt) instead.
"""

import argparse
import os

import numpy as np

from ns_common.cli import add_encoder_args, check_files, check_outputs, entry_point, fail, model_inputs
from ns_common.errors import ModelMismatchError
from ns_common.io import read_corpus, read_similar_pairs, write_recall_result
from ns_common.utils import Timer, logger, set_device, set_seed

INDEX_TYPES = ("exact", "hnsw")


def exact_search(query_embeddings, doc_embeddings, k, chunk_size=2048):
    """Top-k documents by inner product (cosine for normalised embeddings), best first.
    Returns (indices int64 [Q, k], scores float32 [Q, k]) with k capped at the number of documents."""
    query_embeddings = np.asarray(query_embeddings, dtype=np.float32)
    doc_embeddings = np.asarray(doc_embeddings, dtype=np.float32)
    k = min(k, len(doc_embeddings))
    all_indices, all_scores = [], []
    for start in range(0, len(query_embeddings), chunk_size):
        scores = query_embeddings[start : start + chunk_size] @ doc_embeddings.T
        # argpartition finds the top k in linear time; only those k are then sorted
        top = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < scores.shape[1]
            else np.tile(np.arange(scores.shape[1]), (len(scores), 1))
        )
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        all_indices.append(np.take_along_axis(top, order, axis=1))
        all_scores.append(np.take_along_axis(top_scores, order, axis=1))
    if not all_indices:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    return np.concatenate(all_indices).astype(np.int64), np.concatenate(all_scores).astype(np.float32)


def hnsw_search(query_embeddings, doc_embeddings, k, hnsw_m=32, ef_construction=200, ef_search=100):
    """Approximate top-k by inner product with a faiss HNSW index (PaddleNLP uses hnswlib the same way)."""
    import faiss

    doc_embeddings = np.ascontiguousarray(doc_embeddings, dtype=np.float32)
    k = min(k, len(doc_embeddings))
    index = faiss.IndexHNSWFlat(doc_embeddings.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.hnsw.efSearch = max(ef_search, k)
    index.add(doc_embeddings)
    scores, indices = index.search(np.ascontiguousarray(query_embeddings, dtype=np.float32), k)
    return indices.astype(np.int64), scores.astype(np.float32)


def search(query_embeddings, doc_embeddings, k, index="exact"):
    if index == "exact":
        return exact_search(query_embeddings, doc_embeddings, k)
    if index == "hnsw":
        return hnsw_search(query_embeddings, doc_embeddings, k)
    raise ValueError(f"unknown index {index!r} (expected one of {', '.join(INDEX_TYPES)})")


def dense_recall(
    model,
    tokenizer,
    queries,
    corpus,
    recall_num,
    max_seq_length=64,
    batch_size=64,
    index="exact",
    corpus_embeddings=None,
    progress=False,
):
    """Embeds queries (and the corpus unless corpus_embeddings is given) and returns (indices, scores)."""
    from ns_common.semantic import embed_texts

    if corpus_embeddings is None:
        corpus_embeddings = embed_texts(
            model, tokenizer, corpus, max_seq_length, batch_size, progress=progress, role="doc"
        )
    query_embeddings = embed_texts(
        model, tokenizer, queries, max_seq_length, batch_size, progress=progress, role="query"
    )
    return search(query_embeddings, corpus_embeddings, recall_num, index)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_encoder_args(parser)
    parser.add_argument("--corpus_file", required=True, help="one document a line")
    parser.add_argument(
        "--similar_text_pair_file",
        "--similar_text_pair",
        dest="similar_text_pair_file",
        required=True,
        help="query<TAB>gold doc; each distinct query is searched",
    )
    parser.add_argument("--recall_result_dir", default="recall_result_dir")
    parser.add_argument("--recall_result_file", default="recall_result.txt")
    parser.add_argument("--recall_num", type=int, default=50)
    parser.add_argument(
        "--index", choices=INDEX_TYPES, default="exact", help="exact (ground truth) or hnsw (approximate)"
    )
    parser.add_argument(
        "--corpus_embedding_file",
        default=None,
        help="the corpus' embeddings by this model (.npy, a row a line of --corpus_file, e.g. feature_extract.py's "
        "through Paddle Inference): only the queries are embedded",
    )
    args = parser.parse_args(argv)
    if args.recall_num <= 0:
        fail(f"--recall_num must be positive, got {args.recall_num}")
    check_files(
        ("corpus_file", args.corpus_file),
        ("similar_text_pair_file", args.similar_text_pair_file),
        ("corpus_embedding_file", args.corpus_embedding_file),
    )
    check_outputs(
        files=[("recall_result_file", os.path.join(args.recall_result_dir, args.recall_result_file))],
        inputs=[
            ("corpus_file", args.corpus_file),
            ("similar_text_pair_file", args.similar_text_pair_file),
            ("corpus_embedding_file", args.corpus_embedding_file),
            *model_inputs(args),
        ],
    )
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    from ns_common.semantic import load_encoder

    set_device(args.device)
    set_seed(1000)  # only matters without --params_path (the random projection of the untrained baseline)
    queries, _ = read_similar_pairs(args.similar_text_pair_file)
    corpus = read_corpus(args.corpus_file)
    if not queries or not corpus:
        fail(
            f"nothing to search: {len(queries)} queries in {args.similar_text_pair_file}, {len(corpus)} documents in {args.corpus_file}"
        )
    model, tokenizer = load_encoder(
        args.model_name_or_path, args.params_path, args.output_emb_size, pooling=args.pooling
    )
    corpus_embeddings = None
    if args.corpus_embedding_file:
        corpus_embeddings = np.load(args.corpus_embedding_file)
        if corpus_embeddings.shape != (len(corpus), model.embedding_dim):
            raise ModelMismatchError(
                f"--corpus_embedding_file {args.corpus_embedding_file}: shape {list(corpus_embeddings.shape)}, expected "
                f"[{len(corpus)}, {model.embedding_dim}] (a row for each line of --corpus_file, by this model)"
            )
    timer = Timer()
    indices, scores = dense_recall(
        model,
        tokenizer,
        queries,
        corpus,
        args.recall_num,
        args.max_seq_length,
        args.batch_size,
        args.index,
        corpus_embeddings=corpus_embeddings,
        progress=True,
    )
    path = os.path.join(args.recall_result_dir, args.recall_result_file)
    rows = write_recall_result(path, queries, corpus, indices, scores)
    logger.info(
        f"recalled top {indices.shape[1]} of {len(corpus)} documents for {len(queries)} queries ({args.index}) in "
        f"{timer.seconds:.1f}s ({(len(corpus) + len(queries)) / max(timer.seconds, 1e-9):.0f} texts/s) -> {path} ({rows} rows)"
    )
    return path


if __name__ == "__main__":
    main()
