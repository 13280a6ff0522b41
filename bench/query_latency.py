"""End-to-end query latency (not a test): single queries through the code of query.py and the web service,
timed per step, on the CSL corpus and on synthetic corpora of growing size, on every Milvus backend side by side
(bench/backends.py: lite = milvus-lite 2.5, lite3 = milvus-lite 3.x in its own venv, lite_grpc, server).

    python bench/query_latency.py --corpora synthetic_10000 --backends lite              # ~2 min on 2 cores
    python bench/query_latency.py --corpora synthetic_10000 synthetic_100000 --backends lite lite3 lite_grpc server
    python bench/query_latency.py --corpora csl --backends lite lite3 lite_grpc --model_dir output/pipeline/csl/export/recall \
        --reranker_dir output/pipeline/csl/export/reranker --ranking_dir output/pipeline/csl/export/ranking

Modes, each query alone (nq = 1), the web service's steps:
    dense / bm25 / hybrid   encode the query (not for bm25; the model's Paddle Inference path with the
                            default settings), MilvusSearcher.search_batch of --recall_num hits, then
                            Reranker.rerank of those hits (the final ranking = the reranker's order)
    system                  search.system.SearchSystem (query.py's default mode) with the ranking of --ranking_dir:
                            what the fit kept (only the signals it uses are computed)
    system_filtered         the same SearchSystem (same models, same ranking) with a filter on the paper records'
                            category, `category == "<the corpus' most frequent category>"` (query.py --filter):
                            csl only, whose paper records (data/csl/milvus/papers.jsonl, data/prepare_csl.py) are
                            inserted; the synthetic corpora have no categories
    system_full             SearchSystem with every signal: BM25's top 50 with their stored vectors, the query
                            encoded, the lexical features and model, the reranker on all 50, the neural model: the
                            default path when the fit keeps the neural ranking with both signals
Per step p50 / p99 over --queries queries, after warm-up queries, the query encoder warmed first as the web service
warms it at start (every query length's oneDNN kernels: SearchSystem.warm_up). Corpora: `csl` = data/csl/milvus/milvus_data.csv
(or the titles of ../shared/data/csl/papers.jsonl) with the queries of data/csl/recall/dev.csv, the collection built
from data/csl/milvus/papers.jsonl where it exists (the same titles with their fields); `synthetic_N` = N
titles drawn from a character bigram model of the bundled sample's titles, queries = spans of 4-12 characters of
random titles. Corpus vectors come from the same recall model (cached in --work_dir). Without --model_dir /
--reranker_dir, untrained `--preset` models are bootstrapped (latency does not depend on the weights). The models
of a ranking are LightGBM boosters: --ranking_dir's where its corpus is the row's (CSL), elsewhere boosters of the
same size fitted to random data on the row's own corpus statistics (latency depends on the trees' number and
depth, not on what they learned).

Each (corpus, backend) row runs in a process of its own with a time box (--time_box_s): a row that does not
finish in it is recorded as such. Writes bench/results/query_latency.md and .json: corpus -> backend -> mode ->
{encode_p50_ms, search_p50_ms, features_p50_ms, rerank_p50_ms, rank_p50_ms, total_p50_ms, total_p99_ms, ...}.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))
from backends import BACKENDS, milvus_uri, run_isolated, worker_main  # noqa: E402

from ns_common.cli import entry_point  # noqa: E402

SAMPLE_TITLES = os.path.join(REPO, "data", "sample", "milvus", "milvus_data.csv")
CSL_CORPUS = os.path.join(REPO, "data", "csl", "milvus", "milvus_data.csv")
CSL_RECORDS = os.path.join(REPO, "data", "csl", "milvus", "papers.jsonl")  # the same titles with their fields
CSL_PAPERS = os.path.join(REPO, "..", "shared", "data", "csl", "papers.jsonl")
CSL_QUERIES = os.path.join(REPO, "data", "csl", "recall", "dev.csv")
MODES = ("dense", "bm25", "hybrid", "system", "system_filtered", "system_full")
STEPS = ("encode", "search", "features", "rerank", "rank", "total")


def parse_args(argv=None):
    from ns_common.predictor import add_inference_args

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_corpora = (["csl"] if os.path.isfile(CSL_CORPUS) or os.path.isfile(CSL_PAPERS) else []) + [
        "synthetic_10000",
        "synthetic_100000",
    ]
    parser.add_argument("--corpora", nargs="+", default=default_corpora, help="csl and/or synthetic_N (N titles)")
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        default=["lite"],
        help="bench/backends.py: lite (milvus-lite 2.5), lite3 (milvus-lite 3.x, its own venv), lite_grpc, server",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--queries", type=int, default=100, help="timed single queries per mode")
    parser.add_argument("--warmup", type=int, default=5, help="untimed queries per mode first")
    parser.add_argument("--recall_num", type=int, default=50, help="hits recalled and reranked (dense/bm25/hybrid)")
    parser.add_argument("--top_k", type=int, default=10)
    parser.add_argument(
        "--model_dir", default=None, help="exported recall model (default: bootstrap an untrained --preset one)"
    )
    parser.add_argument(
        "--reranker_dir", default=None, help="exported reranker (default: bootstrap an untrained --preset one)"
    )
    parser.add_argument(
        "--ranking_dir",
        default=None,
        help="a fitted ranking (search/fit.py) of the csl corpus (default: boosters of the same size on random data)",
    )
    parser.add_argument("--preset", default="mini", choices=("mini", "small", "base"))
    parser.add_argument("--max_seq_length", type=int, default=64)
    add_inference_args(parser)
    parser.add_argument(
        "--time_box_s", type=float, default=1800, help="seconds per (corpus, backend) row: build + measure"
    )
    parser.add_argument(
        "--work_dir",
        default=os.path.join(tempfile.gettempdir(), "ns_query_latency"),
        help="bootstrapped models, corpora and their vectors (reused by later runs)",
    )
    parser.add_argument(
        "--keep_rows",
        action="store_true",
        help="keep the rows of an earlier query_latency.json that this run does not redo",
    )
    parser.add_argument("--output_dir", default=os.path.join(REPO, "bench", "results"))
    args = parser.parse_args(argv)
    for corpus in args.corpora:
        if corpus != "csl" and not (corpus.startswith("synthetic_") and corpus[len("synthetic_") :].isdigit()):
            parser.error(f"--corpora {corpus}: expected csl or synthetic_N")
    return args


# ---------------------------------------------------------------- corpora


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [" ".join(line.split()) for line in f if line.strip()]


def synthetic_titles(n, seed=0):
    """n titles from a character bigram model of the sample's titles (90% bigram, 10% unigram, so every
    character can follow any other), lengths drawn from the sample's."""
    sample = read_lines(SAMPLE_TITLES)
    chars = sorted({c for t in sample for c in t})
    index = {c: i for i, c in enumerate(chars)}
    counts = np.zeros((len(chars), len(chars)))
    for t in sample:
        for a, b in zip(t, t[1:]):
            counts[index[a], index[b]] += 1
    unigram = np.bincount([index[c] for t in sample for c in t], minlength=len(chars)) / sum(map(len, sample))
    rows = counts.sum(axis=1, keepdims=True)
    transition = 0.9 * np.divide(counts, rows, out=np.tile(unigram, (len(chars), 1)), where=rows > 0) + 0.1 * unigram
    # row s's cumulative distribution shifted to [s, s + 1]: one searchsorted samples a next character per title
    shifted = (
        np.cumsum(transition, axis=1) / transition.sum(axis=1, keepdims=True) + np.arange(len(chars))[:, None]
    ).ravel()
    rng = np.random.default_rng(seed)
    lengths = rng.choice([len(t) for t in sample], n)
    state = rng.choice(len(chars), n, p=unigram)
    out = np.zeros((n, lengths.max()), dtype=np.int64)
    for step in range(lengths.max()):
        out[:, step] = state
        state = np.minimum(
            np.searchsorted(shifted, state + rng.random(n), side="right") - state * len(chars), len(chars) - 1
        )
    table = np.array(chars)
    return ["".join(table[row[:length]]) for row, length in zip(out, lengths)]


def corpus_and_queries(name, n_queries, work_dir):
    """(corpus file, queries) of a corpus name; synthetic corpora are written once into work_dir."""
    if name == "csl":
        if os.path.isfile(CSL_CORPUS):
            corpus = CSL_CORPUS
        else:
            corpus = os.path.join(work_dir, "csl_titles.csv")
            with open(CSL_PAPERS, encoding="utf-8") as f:
                titles = [" ".join(json.loads(line)["title"].split()) for line in f if line.strip()]
            write_lines(corpus, titles)
        if os.path.isfile(CSL_QUERIES):
            with open(CSL_QUERIES, encoding="utf-8") as f:
                queries = list(dict.fromkeys(" ".join(line.split("\t")[0].split()) for line in f if "\t" in line))
        else:
            queries = [t[: max(4, len(t) // 2)] for t in read_lines(corpus)[::37]]
        queries = [q for q in queries if q.lower() != "query"]
        return corpus, queries[:n_queries]
    n = int(name[len("synthetic_") :])
    corpus = os.path.join(work_dir, f"{name}.csv")
    if not os.path.isfile(corpus):
        write_lines(corpus, synthetic_titles(n))
    titles = read_lines(corpus)
    rng = np.random.default_rng(1)
    queries = []
    for i in rng.integers(0, len(titles), n_queries):
        title = titles[i]
        size = int(rng.integers(4, 13))
        start = int(rng.integers(0, max(1, len(title) - size)))
        queries.append(title[start : start + size])
    return corpus, queries


def records_of(name, corpus):
    """(paper records file to insert instead of the corpus, None) for the csl corpus when data/prepare_csl.py wrote
    them beside it (the same titles line for line: the same ids and vectors); else (None, why system_filtered has
    no row)."""
    from recall.milvus.data import corpus_fingerprint

    if name != "csl":
        return None, "no categories (synthetic corpus)"
    if corpus != CSL_CORPUS or not os.path.isfile(CSL_RECORDS):
        return None, "no categories (no data/csl/milvus/papers.jsonl: rerun data/prepare_csl.py)"
    if corpus_fingerprint(CSL_RECORDS) != corpus_fingerprint(corpus):
        return None, "no categories (data/csl/milvus/papers.jsonl holds other titles than milvus_data.csv)"
    return CSL_RECORDS, None


def category_filter(records):
    """(`category == "<the most frequent category>"`, papers it holds for) of a records file; None without categories."""
    from recall.milvus.data import corpus_facets

    categories = corpus_facets(records)["category"]  # the most frequent first
    if not categories:
        return None
    category, papers = next(iter(categories.items()))
    return f"category == {json.dumps(category, ensure_ascii=False)}", papers


def write_lines(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)


def fingerprint(model_dir):
    with open(os.path.join(model_dir, "inference.pdiparams"), "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()[:12]


# ---------------------------------------------------------------- models


def bootstrap_models(args):
    """Untrained exported recall model and reranker of --preset, vocabulary from the sample and CSL titles."""
    import paddle

    from ernie_matching.model import load_matching_model
    from ns_common.checkpoint import save_encoder_config
    from ns_common.export import export_static
    from ns_common.modeling import new_backbone, new_tokenizer
    from ns_common.semantic import load_encoder
    from ns_common.semantic_tools import export_encoder
    from ns_common.vocab import build_vocab, write_vocab

    root = os.path.join(args.work_dir, f"models_{args.preset}")
    recall_dir, reranker_dir = os.path.join(root, "recall"), os.path.join(root, "reranker")
    if os.path.isfile(os.path.join(reranker_dir, "inference.pdiparams")):
        return recall_dir, reranker_dir
    texts = read_lines(SAMPLE_TITLES) + (read_lines(CSL_CORPUS) if os.path.isfile(CSL_CORPUS) else [])
    vocab = build_vocab(texts)
    for model_type, name in (("ernie", "backbone"), ("ernie-gram", "backbone_gram")):
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        write_vocab(vocab, os.path.join(folder, "vocab.txt"))
        paddle.seed(1000)
        new_backbone(model_type, len(vocab), args.preset).save_pretrained(folder)
        new_tokenizer(model_type, os.path.join(folder, "vocab.txt")).save_pretrained(folder)
    model, tokenizer = load_encoder(os.path.join(root, "backbone"), output_emb_size=0)
    export_encoder(model, tokenizer, recall_dir)
    reranker, tokenizer = load_matching_model(os.path.join(root, "backbone_gram"), mark_matches=True)
    reranker.eval()
    export_static(reranker, reranker_dir)
    tokenizer.save_pretrained(reranker_dir)
    reranker.ptm.config.save_pretrained(reranker_dir)
    save_encoder_config(reranker, reranker_dir)
    return recall_dir, reranker_dir


def latency_rankings(corpus, ranking_dir, root):
    """{"system": the ranking query.py serves, "system_full": one with every signal} for a corpus: --ranking_dir's
    models where they were fitted on this corpus; else LightGBM boosters of the sizes search/fit.py picks at most,
    fitted to random rows (latency depends on the trees, not on what they learned), on the corpus' statistics."""
    from recall.milvus.data import iter_corpus_chunks
    from search import fit, learn
    from search.features import FEATURES, LexicalStats
    from search.system import CANDIDATES, FORMAT, NEURAL_FEATURES, Ranking

    stats = LexicalStats.from_texts([text for _, chunk in iter_corpus_chunks(corpus, 65536) for text in chunk])
    fitted = Ranking.load(ranking_dir) if ranking_dir else None
    if fitted is not None and fitted.stats.sha1 != stats.sha1:
        fitted = None  # fitted on another corpus (CSL): a synthetic row gets boosters of the same size
    rng = np.random.default_rng(0)

    def booster(names, grid):
        largest = {key: max(values) for key, values in grid.items()}
        labels = [np.eye(CANDIDATES, dtype=np.int32)[rng.integers(CANDIDATES)] for _ in range(100)]
        return learn.fit_ranker(
            learn.GroupedData([rng.random((CANDIDATES, len(names))) for _ in labels], labels, feature_names=names),
            largest,
        )

    lexical_spec = (
        fitted.spec["lexical"]
        if fitted is not None and fitted.spec["lexical"]
        else {"features": FEATURES, "params": {}, "model_file": "lexical.txt", "set": "every lexical feature"}
    )
    lexical = (
        fitted.lexical_model
        if fitted is not None and fitted.lexical_model is not None
        else booster(FEATURES, fit.GRIDS["lexical"])
    )
    base = {
        "format": FORMAT,
        "candidates": CANDIDATES,
        "lexical": lexical_spec,
        "neural": None,
        "chosen": "lexical",
        "fitted_with": {"corpus": {"documents": stats.n_docs, "sha1": stats.sha1}},
    }
    full = dict(
        base,
        chosen="neural",
        neural={"features": NEURAL_FEATURES, "params": {}, "model_file": "neural.txt", "set": "every signal"},
    )
    fit.write_ranking(
        os.path.join(root, "system_full"),
        full,
        stats,
        {"lexical": lexical, "neural": booster(NEURAL_FEATURES, fit.GRIDS["neural"])},
    )
    if fitted is not None:
        return {"system": ranking_dir, "system_full": os.path.join(root, "system_full")}
    fit.write_ranking(os.path.join(root, "system"), base, stats, {"lexical": lexical})
    return {"system": os.path.join(root, "system"), "system_full": os.path.join(root, "system_full")}


# ---------------------------------------------------------------- one row (corpus, backend), in its own process


def embeddings_of(name, corpus, encoder, model_dir, work_dir):
    from ns_common.utils import logger

    path = os.path.join(work_dir, f"{name}.{fingerprint(model_dir)}.npy")
    if not os.path.isfile(path):
        texts = read_lines(corpus)
        start = time.perf_counter()
        vectors = np.concatenate([encoder.encode(texts[i : i + 10000]) for i in range(0, len(texts), 10000)])
        logger.info(f"embedded {len(texts)} texts in {time.perf_counter() - start:.0f}s")
        np.save(path + ".tmp.npy", vectors)
        os.replace(path + ".tmp.npy", path)
    return np.load(path, mmap_mode="r")


def time_mode(mode, queries, searcher, encoder, reranker, system, args, filters=None):
    """Per-step seconds of each query of one mode; filters: mode -> the Milvus expression its searches filter on."""
    seconds = {step: [] for step in STEPS}
    for i, query in enumerate(queries[: args.warmup] + queries):
        if mode.startswith("system"):
            system[mode].search(query, top_k=args.top_k, filter=(filters or {}).get(mode))
            steps = dict(system[mode].timings)
        else:
            encoder.seconds = 0.0
            start = time.perf_counter()
            hits = searcher.search_batch([query], args.recall_num, mode)[0]
            recalled = time.perf_counter()
            reranker.rerank(query, [h.to_dict() for h in hits], args.top_k)
            done = time.perf_counter()
            steps = {
                "encode": encoder.seconds,
                "search": recalled - start - encoder.seconds,
                "rerank": done - recalled,
                "total": done - start,
            }
        if i >= args.warmup:
            for step in STEPS:
                seconds[step].append(steps.get(step, 0.0))
    result = {}
    for step in STEPS:
        values = np.asarray(seconds[step]) * 1000
        result[f"{step}_p50_ms"] = round(float(np.percentile(values, 50)), 2)
        result[f"{step}_p99_ms"] = round(float(np.percentile(values, 99)), 2)
    result["queries"] = len(queries)
    return result


def row_worker(payload):
    """One (corpus, backend) row, in the backend's own interpreter (bench/backends.py)."""
    from ernie_matching.reranker import Reranker
    from ns_common.utils import logger, quiet_paddlenlp
    from recall.milvus import insert, store
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder, TimedEncoder
    from recall.milvus.search import MilvusSearcher

    quiet_paddlenlp()
    corpus_name, backend, args = payload["corpus"], payload["backend"], argparse.Namespace(**payload["args"])
    recall_dir, reranker_dir = payload["models"]
    root = tempfile.mkdtemp(prefix=f"query_latency_{corpus_name}_{backend}_")
    try:
        inference = dict(cpu_threads=args.cpu_threads, enable_mkldnn=args.enable_mkldnn, precision=args.precision)
        encoder = TimedEncoder(TextEncoder(model_dir=recall_dir, max_seq_length=args.max_seq_length, **inference))
        reranker = Reranker.from_dir(reranker_dir, max_seq_length=args.max_seq_length, **inference)
        corpus, queries = corpus_and_queries(corpus_name, args.queries, args.work_dir)
        records, no_records = records_of(corpus_name, corpus)
        build = {"documents": len(read_lines(corpus)), "settings": encoder.predictor.settings}
        start = time.perf_counter()
        embeddings = embeddings_of(corpus_name, corpus, encoder, recall_dir, args.work_dir)
        build["warm_up_lengths"] = encoder.warm_up()  # as the web service does at start (SearchSystem.warm_up)
        build["embed_s"] = round(time.perf_counter() - start, 1)
        with milvus_uri(backend, root) as (uri, _):
            config = load_config(uri=uri, collection="latency")
            client = store.connect(config)
            build["engine"] = store.engine(client).name
            # the vectors are the corpus' titles; a records file holds the same titles (records_of) and their fields
            stats = insert.insert_corpus(client, config, records or corpus, embeddings)
            store.close(client, config)
            build.update(
                insert_s=round(stats.insert_seconds, 1),
                index_s=round(stats.index_seconds, 1),
                index_type=stats.index_type,
            )
            logger.info(f"{corpus_name} {backend}: {json.dumps(build)}")
            result = {"_build": build}  # goes to the .md; the .json holds the modes only
            with MilvusSearcher(config, encoder) as searcher:
                system, filters = {}, {}
                if "bm25" in searcher.modes:
                    from search.system import Ranking, SearchSystem, needed_components

                    for mode, path in latency_rankings(corpus, args.ranking_dir, root).items():
                        ranking = Ranking.load(path)
                        needed = needed_components("system", ranking)  # system_full: every signal, so both models
                        system[mode] = SearchSystem(
                            searcher,
                            ranking,
                            encoder if "encoder" in needed else None,
                            reranker if "reranker" in needed else None,
                        )
                    found = category_filter(records) if records else None
                    if found:  # the system's own SearchSystem, every search filtered
                        system["system_filtered"], filters["system_filtered"] = system["system"], found[0]
                for mode in args.modes:
                    if mode not in searcher.modes and mode not in system:
                        no_row = "no BM25 field (Milvus < 2.5)"
                        if mode == "system_filtered" and "system" in system:
                            no_row = no_records or "no categories (no paper of the records has one)"
                        result[mode] = {"status": no_row}
                        continue
                    result[mode] = time_mode(mode, queries, searcher, encoder, reranker, system, args, filters)
                    if mode in filters:
                        result[mode].update(filter=filters[mode], filter_papers=found[1])
                    logger.info(f"{corpus_name} {backend} {mode}: {json.dumps(result[mode])}")
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_row(corpus_name, backend, args, models):
    result = run_isolated(
        backend, __file__, {"corpus": corpus_name, "args": vars(args), "models": list(models)}, args.time_box_s
    )
    if "error" in result:
        return {mode: {"status": result["error"]} for mode in args.modes}, None
    return {k: v for k, v in result.items() if k != "_build"}, result["_build"]


# ---------------------------------------------------------------- report


def markdown(results, builds, meta):
    lines = [
        "# End-to-end query latency",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.platform()}; load average {meta['load_before']} before the run, "
        f"{meta['load_after']} after (other jobs running on the same cores make every figure pessimistic). "
        f"Run: `{meta['command']}`"
        + ("; rows it did not redo are kept from the earlier file (--keep_rows)." if meta.get("kept") else "."),
        "",
        f"Models: {meta['models']}; inference: {meta['settings']}. Each mode: {meta['queries']} single queries after "
        f"{meta['warmup']} warm-up ones; dense/bm25/hybrid recall {meta['recall_num']} hits and rerank them, system = "
        "SearchSystem with the fitted ranking (what it uses), system_filtered = that SearchSystem with a filter on the most "
        "frequent category of the corpus' paper records (the filter and the papers it holds for beside the mode), "
        "system_full = SearchSystem with every signal (BM25's top 50 with their "
        "vectors, the query encoded, lexical features and model, the reranker on all 50, the neural model). Times in ms, p50 "
        "(p99 in total); search = Milvus.",
        "",
        "| corpus | backend | mode | encode p50 | search p50 | features p50 | rerank p50 | rank p50 | total p50 | total p99 |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for corpus, backends in results.items():
        for backend, modes in backends.items():
            for mode, r in modes.items():
                if "filter" in r:
                    mode = f"{mode} (`{r['filter']}`: {r['filter_papers']} papers)"
                if "status" in r:
                    lines.append(f"| {corpus} | {backend} | {mode} | {r['status']} | | | | | | |")
                    continue
                lines.append(
                    f"| {corpus} | {backend} | {mode} | {r['encode_p50_ms']:.1f} | {r['search_p50_ms']:.1f} | "
                    f"{r.get('features_p50_ms', 0.0):.1f} | {r['rerank_p50_ms']:.1f} | {r['rank_p50_ms']:.1f} | **{r['total_p50_ms']:.1f}** | "  # noqa: E501
                    f"{r['total_p99_ms']:.1f} |"
                )
    lines += [
        "",
        "Rows built by this run (documents; seconds to embed them, ~0 when cached in --work_dir; insert; index):",
        "",
    ]
    for (corpus, backend), b in builds.items():
        if b:
            lines.append(
                f"- {corpus} / {backend} ({b.get('engine', '?')}, {b.get('index_type', '?')} index): {b['documents']} documents, "
                f"embed {b['embed_s']} s, insert {b['insert_s']} s, index {b['index_s']} s"
            )
    return "\n".join(lines) + "\n"


@entry_point
def main(argv=None):
    args = parse_args(argv)
    from ns_common.utils import logger, quiet_paddlenlp

    quiet_paddlenlp()
    os.makedirs(args.work_dir, exist_ok=True)
    load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.model_dir and args.reranker_dir:
        models = (args.model_dir, args.reranker_dir)
        described = f"{args.model_dir} + {args.reranker_dir}"
    elif args.model_dir or args.reranker_dir:
        from ns_common.cli import fail

        fail("give both --model_dir and --reranker_dir, or neither (untrained models are bootstrapped)")
    else:
        models = bootstrap_models(args)
        described = f"untrained bootstrapped {args.preset} ERNIE (recall, 128-d mean pooling) + ERNIE-Gram (reranker)"
    json_file, md_file = (os.path.join(args.output_dir, f"query_latency.{ext}") for ext in ("json", "md"))
    results = {}
    kept = args.keep_rows and os.path.isfile(json_file)
    if kept:
        with open(json_file, encoding="utf-8") as f:
            results = json.load(f)
    from ns_common.predictor import InferencePredictor, query_graph_dir

    settings = InferencePredictor(
        models[0], cpu_threads=args.cpu_threads, enable_mkldnn=args.enable_mkldnn, precision=args.precision
    ).settings
    if query_graph_dir(models[0]):  # export_model.py --query_drop_layers: what encodes the queries
        from ns_common.semantic_tools import read_export_info

        left_out = read_export_info(models[0]).get("query_drop_layers")
        settings += f"; queries through the export's query graph (layers {left_out} left out)"
    meta = {
        "command": "python bench/query_latency.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "models": described,
        "settings": settings,
        "queries": args.queries,
        "warmup": args.warmup,
        "recall_num": args.recall_num,
        "load_before": load_before,
        "kept": kept,
    }
    os.makedirs(args.output_dir, exist_ok=True)
    builds = {}
    for corpus in args.corpora:
        for backend in args.backends:
            row, builds[corpus, backend] = run_row(corpus, backend, args, models)
            results.setdefault(corpus, {})[backend] = row
            meta["load_after"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
            logger.info(f"{corpus} {backend}: {json.dumps(row)}")
            with open(json_file, "w", encoding="utf-8") as f:
                json.dump(results, f, indent=2, ensure_ascii=False)
            with open(md_file, "w", encoding="utf-8") as f:
                f.write(markdown(results, builds, meta))
    print(markdown(results, builds, meta))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # one row, in its backend's interpreter (bench/backends.py)
        worker_main(sys.argv[2], row_worker)
    else:
        main()
