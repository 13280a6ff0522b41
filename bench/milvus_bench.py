"""Milvus stage benchmark (not a test): extraction throughput, insert throughput, query latency and dense recall,
at several collection sizes, on every Milvus backend side by side (bench/backends.py: milvus-lite 2.5 embedded,
milvus-lite 3.x embedded in its own venv, milvus-lite 2.5 over gRPC, the Milvus 2.3.5 server).

    bash bench/setup_lite3_venv.sh                                 # once: milvus-lite 3.x's venv (backend lite3)
    python bench/milvus_bench.py --skip_extraction                 # 10k + 100k, every backend
    python bench/milvus_bench.py --skip_extraction --backends lite lite3 --sizes 10000 --lite_ivf
    python bench/milvus_bench.py --extraction_only --preset mini small

1. Extraction: the same model embeds the same corpus through Paddle Inference (the exported graph,
   feature_extract.py's path) with its default settings (oneDNN), without oneDNN, and through the dynamic
   graph (the checkpoint), side by side; docs/s of each and the ratios. Without --model_dir/--params_path a
   from-scratch model of each --preset is bootstrapped and exported. --extraction_only: this part alone
   (the index rows of the earlier milvus_bench.json are kept).
2. Index: for each backend and size N a fresh collection of N documents (CSL titles, then sentences of CSL
   abstracts; cycled, each made unique by its id, beyond what there is) with synthetic vectors (dim --dim, of
   intrinsic dimension 48 like real sentence embeddings: a random linear map of Gaussian latents, normalised) is
   inserted with recall/milvus/insert.py's code, index type AUTO (what the project builds: FLAT on the Lite engine,
   HNSW elsewhere; --lite_ivf adds an IVF_FLAT row on lite); then --queries single queries (nq=1, one at a time)
   per mode give p50/p99 latency (BM25 queries: CSL keyword lists, else half titles), and the dense top-10 is
   compared with the exact top-10 (numpy) of the same query vectors. Each (backend, size) runs in a process of
   its own (its backend's venv), so its peak RSS is its own; for a server, the server's processes are sampled too.

Writes bench/results/milvus_bench.md (tables) and milvus_bench.json.
"""

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))
from backends import BACKENDS, milvus_uri, run_isolated, worker_main  # noqa: E402

from ns_common.cli import entry_point  # noqa: E402

SAMPLE_CORPUS = os.path.join(REPO, "data", "sample", "milvus", "milvus_data.csv")
CSL_CORPUS = os.path.join(REPO, "..", "shared", "data", "csl", "papers.jsonl")
CSL_ABSTRACTS = os.path.join(REPO, "..", "shared", "data", "csl", "abstracts.jsonl")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000], help="collection sizes (vectors)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument(
        "--lite_sizes", type=int, nargs="+", default=None, help="sizes for the Lite backends (default: --sizes)"
    )
    parser.add_argument(
        "--server_sizes", type=int, nargs="+", default=None, help="sizes for the server (default: --sizes)"
    )
    parser.add_argument(
        "--lite_ivf", action="store_true", help="also an IVF_FLAT row on lite (its nlist / nprobe have no effect)"
    )
    parser.add_argument(
        "--time_box_s", type=float, default=3600, help="seconds per row: a row not done by then is recorded as such"
    )
    parser.add_argument("--dim", type=int, default=256, help="synthetic vector size (PaddleNLP's output_emb_size)")
    parser.add_argument("--queries", type=int, default=200, help="single queries per mode and size")
    parser.add_argument("--batch_size", type=int, default=5000, help="rows per insert request")
    parser.add_argument(
        "--corpus_file",
        default=None,
        help="texts for extraction and the collections (default: CSL titles and abstract sentences when present, else the sample)",
    )
    parser.add_argument("--extract_docs", type=int, default=5000, help="documents embedded by each extraction path")
    parser.add_argument("--model_dir", default=None, help="exported recall model (else one is bootstrapped)")
    parser.add_argument("--model_name_or_path", default=None, help="backbone of --params_path")
    parser.add_argument(
        "--params_path", default=None, help="checkpoint of the --model_dir model, for the dynamic-graph path"
    )
    parser.add_argument("--output_emb_size", type=int, default=256)
    parser.add_argument(
        "--preset",
        nargs="+",
        default=["small"],
        help="size(s) of the bootstrapped model (mini, small, base); several: one extraction row each, in one run",
    )
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument(
        "--cpu_threads",
        type=int,
        default=None,
        help="Paddle Inference threads (default: the library's, the usable cores)",
    )
    parser.add_argument("--skip_extraction", action="store_true")
    parser.add_argument(
        "--extraction_only", action="store_true", help="measure extraction only; keep the earlier file's index rows"
    )
    parser.add_argument(
        "--keep_rows",
        action="store_true",
        help="keep the rows of an earlier milvus_bench.json in --output_dir that this run does not redo (and, with "
        "--skip_extraction, its extraction figures): add or rerun one backend/size without redoing the rest",
    )
    parser.add_argument("--output_dir", default=os.path.join(REPO, "bench", "results"))
    return parser.parse_args(argv)


def corpus_texts(path):
    """Texts of a one-per-line file, or the titles of CSL's papers.jsonl and then the sentences of its abstracts
    and of abstracts.jsonl (distinct, at least 8 characters): ~100k real documents of the domain."""
    if not path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    texts, abstracts = [], []
    for file in (path, CSL_ABSTRACTS):
        if os.path.isfile(file):
            with open(file, encoding="utf-8") as f:
                for line in f:
                    paper = json.loads(line)
                    if paper.get("title"):
                        texts.append(" ".join(paper["title"].split()))
                    abstracts.append(paper.get("abstract") or "")
    sentences = (s.strip() for a in abstracts for s in re.split(r"[。；;！？!?]", a))
    return list(dict.fromkeys(texts + [s for s in sentences if len(s) >= 8]))


def keyword_queries(path, n):
    """CSL keyword lists joined by spaces (the retrieval task's queries), up to n; [] for another corpus."""
    if not path.endswith(".jsonl"):
        return []
    with open(path, encoding="utf-8") as f:
        lists = [json.loads(line).get("keywords") or [] for line in f]
    return [" ".join(k) for k in lists if k][:n]


def percentiles_ms(seconds):
    values = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


# ---------------------------------------------------------------- 1. extraction


def bootstrap_model(texts, preset, output_emb_size, root):
    """From-scratch model of the preset: exported dir + checkpoint, like a trained recall model."""
    import paddle

    from ns_common.bootstrap import bootstrap
    from ns_common.checkpoint import save_encoder_config
    from ns_common.semantic import load_encoder
    from ns_common.semantic_tools import export_encoder
    from ns_common.utils import set_seed
    from ns_common.vocab import build_vocab

    set_seed(1000)
    backbone = os.path.join(root, "bootstrap")
    bootstrap("ernie", build_vocab(texts), preset, backbone)
    model, tokenizer = load_encoder(backbone, output_emb_size=output_emb_size)
    params = os.path.join(root, "model_state.pdparams")
    paddle.save(model.state_dict(), params)
    save_encoder_config(model, root)  # its pooling, so that the dynamic-graph path rebuilds the same encoder
    export_encoder(model, tokenizer, os.path.join(root, "export"))
    return os.path.join(root, "export"), backbone, params


EXTRACTION_PATHS = ("inference", "inference_no_onednn", "dynamic")


def bench_extraction(args, texts, root, preset=None):
    """docs/s of the same model through Paddle Inference with its default settings (the fast path: oneDNN),
    Paddle Inference without oneDNN, and the dynamic graph, side by side: the documents go in 5 rounds, each
    round through every path in turn, so that a change of load on a shared machine hits all paths alike."""
    from recall.milvus.model import TextEncoder

    if args.model_dir and not args.params_path:
        from ns_common.cli import fail

        fail("--model_dir needs --params_path and --model_name_or_path (the same model, for the dynamic-graph path)")
    model_dir, backbone, params = (
        (args.model_dir, args.model_name_or_path, args.params_path)
        if args.model_dir
        else bootstrap_model(texts, preset, args.output_emb_size, os.path.join(root, preset))
    )
    docs = texts[: args.extract_docs]
    common = dict(max_seq_length=args.max_seq_length, batch_size=64)
    paths = {
        "inference": TextEncoder(model_dir=model_dir, cpu_threads=args.cpu_threads, **common),
        "inference_no_onednn": TextEncoder(
            model_dir=model_dir, cpu_threads=args.cpu_threads, enable_mkldnn=False, **common
        ),
        "dynamic": TextEncoder(
            model_name_or_path=backbone, params_path=params, output_emb_size=args.output_emb_size, **common
        ),
    }
    result, vectors = (
        {
            "docs": len(docs),
            "preset": None if args.model_dir else preset,
            "model_dir": model_dir,
            "inference_settings": paths["inference"].predictor.settings,
        },
        {},
    )
    wall, cpu = dict.fromkeys(paths, 0.0), dict.fromkeys(paths, 0.0)
    for encoder in paths.values():
        encoder.encode(docs[:64])  # warm-up: graph optimisation, oneDNN kernels
    rounds = np.array_split(np.arange(len(docs)), 5)
    for chunk in rounds:
        for name, encoder in paths.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            vectors.setdefault(name, []).append(encoder.encode([docs[i] for i in chunk]))
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - cpu_start
    for name, encoder in paths.items():
        vectors[name] = np.concatenate(vectors[name])
        result[f"{name}_docs_per_s"] = len(docs) / wall[name]
        # docs per CPU second of this process: steadier than wall time on a shared machine
        result[f"{name}_docs_per_cpu_s"] = len(docs) / cpu[name]
        latencies = []
        for text in docs[:100]:
            start = time.perf_counter()
            encoder.encode([text])
            latencies.append(time.perf_counter() - start)
        result[f"{name}_query_encode"] = percentiles_ms(latencies)
    result["inference_over_dynamic"] = result["inference_docs_per_s"] / result["dynamic_docs_per_s"]
    result["inference_over_dynamic_cpu"] = result["inference_docs_per_cpu_s"] / result["dynamic_docs_per_cpu_s"]
    result["no_onednn_over_dynamic"] = result["inference_no_onednn_docs_per_s"] / result["dynamic_docs_per_s"]
    result["max_abs_diff_inference_vs_dynamic"] = float(np.abs(vectors["inference"] - vectors["dynamic"]).max())
    return result


# ---------------------------------------------------------------- 2. index (one process per backend and size)


LATENT_DIM = 48  # real sentence embeddings occupy a low-dimensional part of their space


def embed_latent(latent, projection):
    vectors = (latent @ projection).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_collection(n, dim, texts, root, seed=0):
    """n unit vectors of intrinsic dimension LATENT_DIM (a random linear map of Gaussian latents) and n
    unique texts, written as corpus file + .npy like feature_extract.py's output. Returns the paths and
    (latents, projection) to make queries near documents."""
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((LATENT_DIM, dim)).astype(np.float32)
    latent = rng.standard_normal((n, LATENT_DIM)).astype(np.float32)
    embeddings = os.path.join(root, "corpus_embedding.npy")
    out = np.lib.format.open_memmap(embeddings, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, 100000):
        out[start : start + 100000] = embed_latent(latent[start : start + 100000], projection)
    out.flush()
    del out
    corpus = os.path.join(root, "corpus.csv")
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f"{texts[i % len(texts)]} {i}\n")
    return corpus, embeddings, latent, projection


class PeakRss:
    """Peak RSS (MB) of a process and its children, sampled every 0.1 s by a thread. (ru_maxrss would not
    do: Linux carries a parent's peak over fork + exec into the child.)"""

    def __init__(self, pid):
        import psutil

        self.root = psutil.Process(pid)
        self.peak_mb = 0.0
        self.stopped = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        import psutil

        while not self.stopped.is_set():
            try:
                processes = [self.root] + self.root.children(recursive=True)
                self.peak_mb = max(self.peak_mb, sum(p.memory_info().rss for p in processes) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.1)

    def stop(self):
        self.stopped.set()
        return self.peak_mb


def index_worker(payload):
    """One (backend, index type, size) row, in the backend's own interpreter (bench/backends.py)."""
    from ns_common.utils import logger
    from recall.milvus import insert, store
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    backend, n, args, texts = (
        payload["backend"],
        payload["size"],
        argparse.Namespace(**payload["args"]),
        payload["texts"],
    )
    root = tempfile.mkdtemp(prefix=f"milvus_bench_{backend}_{n}_")
    try:
        client_rss = PeakRss(os.getpid())
        corpus, embeddings_path, latent, projection = synthetic_collection(n, args.dim, texts, root)
        with milvus_uri(backend, root) as (uri, server_pid):
            server_rss = PeakRss(server_pid) if server_pid else None
            config = load_config(uri=uri, batch_size=args.batch_size, index_type=payload["index_type"])
            embeddings = np.load(embeddings_path, mmap_mode="r")
            client = store.connect(config)
            engine = store.engine(client).name
            stats = insert.insert_corpus(client, config, corpus, embeddings)
            start = time.perf_counter()
            store.close(client, config)  # milvus-lite 3.x waits for its background compaction here
            close_seconds = time.perf_counter() - start
            logger.info(
                f"{backend} {n}: inserted {stats.inserted} in {stats.insert_seconds:.1f}s, index {stats.index_seconds:.1f}s"
            )

            rng = np.random.default_rng(1)
            targets = rng.integers(0, n, args.queries)
            # a query vector = a document's latent moved a little: its exact neighbours are that document and similar ones
            vectors = embed_latent(
                latent[targets] + 0.5 * rng.standard_normal((args.queries, LATENT_DIM)).astype(np.float32), projection
            )
            del latent
            with open(corpus, encoding="utf-8") as f:
                lines = f.read().splitlines()
            queries = payload["keyword_queries"] or [
                lines[t][: max(4, len(lines[t]) // 2)] for t in targets
            ]  # half a title
            queries = [queries[i % len(queries)] for i in range(args.queries)]
            corpus_vectors = np.asarray(embeddings)
            exact = np.concatenate(
                [
                    np.argsort(-(chunk @ corpus_vectors.T), axis=1)[:, :10]
                    for chunk in np.array_split(vectors, max(1, args.queries // 50))
                ]
            )
            del corpus_vectors
            result = {
                "backend": backend,
                "engine": engine,
                "size": n,
                "dim": args.dim,
                "insert_rows_per_s": stats.inserted / stats.insert_seconds,
                "insert_seconds": stats.insert_seconds,
                "index_seconds": stats.index_seconds,
                "close_seconds": close_seconds,
                "count": stats.count,
            }
            with MilvusSearcher(config) as searcher:
                result.update(
                    has_bm25=searcher.info.has_bm25,
                    index_type=searcher.info.index_type,
                    index_settings=searcher.info.index_settings,
                )
                for mode in searcher.modes:
                    for i in range(5):  # warm-up: first calls load indexes and the analyzer
                        searcher.search_batch([queries[i]], 10, mode, vectors=vectors[i : i + 1])
                    seconds, hits = [], []
                    for i in range(args.queries):
                        start = time.perf_counter()
                        hits.append(searcher.search_batch([queries[i]], 10, mode, vectors=vectors[i : i + 1])[0])
                        seconds.append(time.perf_counter() - start)
                    result[mode] = percentiles_ms(seconds)
                    if mode == "dense":
                        result["dense_recall@10"] = 100 * float(
                            np.mean([len({h.id for h in row} & set(ex)) / 10 for row, ex in zip(hits, exact)])
                        )
            # client: the benchmark process (with the embedded Lite engine inside it for lite / lite3)
            result["client_peak_rss_mb"] = client_rss.stop()
            result["server_peak_rss_mb"] = server_rss.stop() if server_rss else None
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- report


def markdown(extraction, rows, args):
    if isinstance(extraction, dict):  # a file of an earlier version: one model
        extraction = [extraction]
    lines = [
        "# Milvus stage benchmark",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.platform()}; Python {platform.python_version()}. "
        f"Run: `{command_line()}`"
        + (
            f"; the other rows{' and the extraction figures' if args.skip_extraction else ''} from `{args.kept_from}`"
            if getattr(args, "kept_from", None)
            else ""
        ),
        "",
    ]
    if extraction:
        load = extraction[0].get("load_average")
        lines += [
            "## Feature extraction (same model, same corpus, the paths side by side)",
            "",
            f"{extraction[0]['docs']} documents, max_seq_length {args.max_seq_length}, batch 64; `inference` = Paddle Inference "
            f"with its default settings ({extraction[0].get('inference_settings', 'see the JSON')}), `inference_no_onednn` = "
            "the same with --no-enable_mkldnn. Documents in 5 rounds, each through every path in turn"
            + (
                f"; load average {load} at the start (other jobs on the same cores: absolute figures are pessimistic, "
                "the ratios are the comparison)"
                if load
                else ""
            )
            + ".",
            "",
            "| model | path | docs/s (wall) | docs per CPU-second | x dynamic (wall) | one-query encode p50 / p99 (ms) |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for e in extraction:
            model = f"bootstrapped {e['preset']}" if e["preset"] else e["model_dir"]
            for name in EXTRACTION_PATHS:
                if f"{name}_docs_per_s" not in e:  # an earlier version's row
                    continue
                q = e[f"{name}_query_encode"]
                lines.append(
                    f"| {model} | {name} | {e[name + '_docs_per_s']:.0f} | {e[name + '_docs_per_cpu_s']:.0f} | "
                    f"{e[name + '_docs_per_s'] / e['dynamic_docs_per_s']:.2f} | {q['p50_ms']:.1f} / {q['p99_ms']:.1f} |"
                )
            lines.append(
                f"| {model} | max abs inference - dynamic | {e['max_abs_diff_inference_vs_dynamic']:.1e} | | | |"
            )
        lines += ["", "PaddleNLP's figure: 10M texts in 3h40m on a V100 (~760/s).", ""]
    lines += [
        "## Index and search, every backend side by side",
        "",
        f"Documents: CSL titles, then sentences of CSL abstracts (cycled, made unique by their id, beyond what there is); "
        f"synthetic vectors (dim {args.dim}, intrinsic dimension {LATENT_DIM}: a random linear map of Gaussian latents); "
        f"{args.queries} single queries per mode, BM25 ones CSL keyword lists; latency is Milvus only (the query vector is "
        "given); index type AUTO unless said (FLAT on the Lite engine, HNSW M 16 / efConstruction 200 / ef 128 elsewhere). "
        "Dense recall@10 = share of the exact top 10 (numpy) that Milvus returns. Index ready = flush until the index "
        "covers every row (on the server: and its query node serves the indexed segments); close = the time the "
        "embedded engine's close takes (milvus-lite 3.x merges segments there). Peak RSS: the benchmark process (the "
        "embedded engines run inside it) and the server's processes. Each row ran in a process of its own, one after "
        "the other, in one run of this script.",
        "",
        "| backend | engine | index | documents | insert rows/s | index ready (s) | close (s) | dense p50 / p99 (ms) | "
        "bm25 p50 / p99 (ms) | hybrid p50 / p99 (ms) | dense recall@10 | peak RSS client / server (MB) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['backend']} | | {r.get('index_type', '')} | {r['size']} | error: {r['error']} | | | | | | | |"
            )
            continue
        lat = lambda m: f"{r[m]['p50_ms']:.1f} / {r[m]['p99_ms']:.1f}" if m in r else "n/a (no BM25)"  # noqa: B023, E731
        server = f"{r['server_peak_rss_mb']:.0f}" if r["server_peak_rss_mb"] else "-"
        settings = " ".join(f"{k} {v}" for k, v in (r.get("index_settings") or {}).items())
        lines.append(
            f"| {r['backend']} | {r.get('engine', '')} | {r.get('index_type', '')}{' ' + settings if settings else ''} | "
            f"{r['size']:,} | {r['insert_rows_per_s']:,.0f} | {r['index_seconds']:.1f} | {r.get('close_seconds', float('nan')):.1f} | "
            f"{lat('dense')} | {lat('bm25')} | {lat('hybrid')} | {r.get('dense_recall@10', r.get('hnsw_recall@10', float('nan'))):.1f} | "
            f"{r['client_peak_rss_mb']:.0f} / {server} |"
        )
    lines += ["", "PaddleNLP's figure: 10M vectors inserted into Milvus 2.1 in 21m (~7.9k vectors/s).", ""]
    return "\n".join(lines)


@entry_point
def main(argv=None):
    args = parse_args(argv)
    from ns_common.utils import logger, quiet_paddlenlp

    quiet_paddlenlp()
    corpus_file = args.corpus_file or (CSL_CORPUS if os.path.isfile(CSL_CORPUS) else SAMPLE_CORPUS)
    texts = corpus_texts(corpus_file)
    logger.info(f"{len(texts)} texts from {corpus_file}")
    extraction, rows = None, []
    earlier_file = os.path.join(args.output_dir, "milvus_bench.json")
    if args.extraction_only:
        args.keep_rows, args.backends = True, []
    if args.keep_rows and os.path.isfile(earlier_file):
        with open(earlier_file, encoding="utf-8") as f:
            earlier = json.load(f)
        planned = set(planned_rows(args))
        rows = [r for r in earlier["index"] if (r["backend"], r.get("index_type", "AUTO"), r["size"]) not in planned]
        extraction = earlier["extraction"] if args.skip_extraction else None
        args.kept_from = earlier.get("command", "an earlier run")
    if not args.skip_extraction:
        with tempfile.TemporaryDirectory(prefix="milvus_bench_model_") as root:
            load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
            extraction = [
                dict(bench_extraction(args, texts, root, preset), load_average=load)
                for preset in ([None] if args.model_dir else args.preset)
            ]
        logger.info(f"extraction: {json.dumps(extraction)}")
    save(args, corpus_file, extraction, rows)
    queries = keyword_queries(corpus_file, args.queries)
    for backend, index_type, n in planned_rows(args):
        payload = {"size": n, "index_type": index_type, "args": vars(args), "texts": texts, "keyword_queries": queries}
        row = run_isolated(backend, __file__, payload, args.time_box_s)
        rows.append({"backend": backend, "size": n, "index_type": index_type, **row})
        logger.info(f"{backend} {index_type} {n}: {json.dumps(rows[-1])}")
        save(args, corpus_file, extraction, rows)  # after every row: a long run stopped early keeps what it measured
    print(markdown(extraction, rows, args))


def planned_rows(args):
    """(backend, index type, size) of every index row this run measures, in order."""
    planned = []
    for n in sorted(set(args.sizes + (args.lite_sizes or []) + (args.server_sizes or []))):
        for backend in args.backends:
            sizes = (args.server_sizes if backend == "server" else args.lite_sizes) or args.sizes
            if n in sizes:
                planned.append((backend, "AUTO", n))
                if backend == "lite" and args.lite_ivf:
                    planned.append((backend, "IVF_FLAT", n))
    return planned


def save(args, corpus_file, extraction, rows):
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "milvus_bench.md"), "w", encoding="utf-8") as f:
        f.write(markdown(extraction, rows, args))
    with open(os.path.join(args.output_dir, "milvus_bench.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "command": command_line(),
                "args": vars(args),
                "corpus_file": corpus_file,
                "extraction": extraction,
                "index": rows,
            },
            f,
            indent=2,
        )


def command_line():
    return "python bench/milvus_bench.py " + " ".join(sys.argv[1:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # one index row, in its backend's interpreter (bench/backends.py)
        worker_main(sys.argv[2], index_worker)
    else:
        main()
