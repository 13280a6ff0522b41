"""A living index at scale (issue 30; a benchmark, not a test): a collection keyed by paper ids built from --num_docs
synthetic CSL-shaped paper records, then updated the way a day's papers arrive, on each backend side by side.

    python bench/living_bench.py --num_docs 10000                         # a smoke run: a minute on 2 cores
    python bench/living_bench.py --num_docs 1000000 --batch_size 2000 --model_dir export/recall \
        --ranking_dir export/ranking --time_box_s 2700                    # the issue's million: ~1 h a backend here

Each backend (bench/backends.py: lite = milvus-lite 2.5 embedded, lite_grpc = its engine over gRPC) runs in a process
of its own, so its peak RSS is its own (the engine's process included). The papers: CSL titles (then sentences of
CSL abstracts; the sample's titles without CSL), cycled and made unique by their number, ids `p0000001`, a category
and a year cycled from the sample; vectors synthetic (bench/milvus_bench.py: dim --dim, intrinsic dimension 48).

    build    insert.update_collection of the records file and its .npy: rows/s, then the database's size on disk
    search   --queries single queries (nq=1) per leg: BM25 (CSL keyword lists, else half titles) and dense (a
             document's latent moved a little), p50 / p99 ms
    update   a file of --update_fraction new papers and as many retitled ones: the plan's seconds (reads only), the
             writes' seconds and rows/s (only those papers written)
    delete   --delete papers by id (recall.milvus.update.delete_papers), seconds
    after    the same searches again
    default  with --ranking_dir (and --model_dir): search.system.SearchSystem, the served default path (the query
             encoded through Paddle Inference, BM25's top 50, features, LightGBM), per-step p50 / p99, before the
             update and after; the ranking's models as fitted, its lexical statistics counted over the bench's titles
             (served_ranking; ~18 min of jieba at 1M, reused when --ranking_dir holds them already)
    embed    with --model_dir: feature extraction docs/s through Paddle Inference on --embed_sample titles, and the
             hours for --num_docs extrapolated from it (labelled so: the million is not embedded)

Vectors are synthetic, of --model_dir's dimension (the collection is bound to no model, so the served path runs end to
end over them). Keep an insert request under ~6 MB (--batch_size x dim x 4 bytes): milvus-lite 2.5.1 inserts ~18x
slower above (dim 384: 2000 rows, not 5000). A row stopped by its time box reports what it finished.

Writes bench/results/living_bench.md and living_bench.json.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))
from backends import milvus_uri, run_isolated, save_partial, worker_main  # noqa: E402
from milvus_bench import (  # noqa: E402
    CSL_CORPUS,
    LATENT_DIM,
    SAMPLE_CORPUS,
    PeakRss,
    corpus_texts,
    embed_latent,
    keyword_queries,
    percentiles_ms,
)

SAMPLE_PAPERS = os.path.join(REPO, "data", "sample", "milvus", "papers.jsonl")
BACKENDS = ("lite", "lite_grpc")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_docs", type=int, default=10000, help="papers the collection is built with")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument(
        "--dim", type=int, default=None, help="synthetic vector size (default: --model_dir's dimension, else 256)"
    )
    parser.add_argument("--queries", type=int, default=200, help="single queries per leg")
    parser.add_argument("--batch_size", type=int, default=5000, help="rows per insert request")
    parser.add_argument(
        "--update_fraction", type=float, default=0.01, help="new papers of the update (and as many retitled)"
    )
    parser.add_argument("--delete", type=int, default=100, help="papers deleted by id")
    parser.add_argument(
        "--corpus_file", default=None, help="texts to cycle (default: CSL's papers.jsonl, else the sample)"
    )
    parser.add_argument(
        "--model_dir",
        default=None,
        help="an exported recall model (export/recall): feature extraction through Paddle Inference is measured on "
        "--embed_sample titles and extrapolated to --num_docs (not run over them); without it, not measured",
    )
    parser.add_argument(
        "--ranking_dir",
        default=None,
        help="a fitted ranking (search/fit.py's export/ranking, fitted with --model_dir): the default path "
        "(SearchSystem: the query encoded, BM25's top 50, features, LightGBM) is timed with its models and its "
        "lexical statistics counted over the bench's titles",
    )
    parser.add_argument("--embed_sample", type=int, default=2000, help="titles embedded to measure docs/s")
    parser.add_argument("--device", default="cpu", help="with --model_dir: cpu, gpu or gpu:N")
    parser.add_argument("--time_box_s", type=float, default=None, help="stop a backend's row after this long")
    parser.add_argument("--output_dir", default=os.path.join(REPO, "bench", "results"))
    args = parser.parse_args(argv)
    if args.num_docs < 100 or not 0 < args.update_fraction <= 1:
        parser.error("--num_docs must be at least 100 and --update_fraction in (0, 1]")
    if args.embed_sample < 1:
        parser.error("--embed_sample must be positive")
    if args.ranking_dir and not args.model_dir:
        parser.error("--ranking_dir needs --model_dir (the query encoder the ranking was fitted with)")
    return args


def paper_title(texts, n, retitled=False):
    """Paper n's title: a text of the cycle made unique by its number (another text when retitled)."""
    return f"{texts[(n + 7919 * retitled) % len(texts)]} {n}"


def write_records(path, npy_path, numbers, texts, latent, projection, facets, retitled=()):
    """Paper records p<number> (titles from texts, made unique) as JSON Lines, with their vectors as feature_extract
    writes them (row i = line i); a number in retitled gets another title and another vector."""
    vectors = np.lib.format.open_memmap(
        npy_path, mode="w+", dtype=np.float32, shape=(len(numbers), projection.shape[1])
    )
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, len(numbers), 100000):
            chunk = numbers[start : start + 100000]
            moved = (
                latent[chunk] + np.asarray([1.0 if n in retitled else 0.0 for n in chunk], dtype=np.float32)[:, None]
            )
            vectors[start : start + len(chunk)] = embed_latent(moved, projection)
            for n in chunk:
                title = paper_title(texts, n, n in retitled)
                category, year = facets[n % len(facets)]
                record = {"id": f"p{n:07d}", "title": title, "category": category, "year": year}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    vectors.flush()


def directory_mb(path):
    total = 0
    for directory, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(directory, name)) for name in files)
    return total / 2**20


def latencies(searcher, queries, vectors):
    result = {}
    for mode in ("bm25", "dense"):
        for i in range(5):  # warm-up: the first calls load the indexes and the analyzer
            searcher.search_batch([queries[i]], 10, mode, vectors=vectors[i : i + 1])
        seconds = []
        for i in range(len(queries)):
            start = time.perf_counter()
            searcher.search_batch([queries[i]], 10, mode, vectors=vectors[i : i + 1])
            seconds.append(time.perf_counter() - start)
        result[mode] = percentiles_ms(seconds)
    return result


def served_ranking(ranking_dir, model_dir, titles, root) -> str:
    """A copy of the fitted ranking under root, its LightGBM models as fitted and its lexical statistics counted over
    titles (the bench's collection, not the corpus it was fitted on: what search.refresh_stats does to a living
    index); written once, in the parent, for every backend's row."""
    from search import fit
    from search.features import LexicalStats, corpus_fingerprint
    from search.ranking import RANKING_FILE, Ranking

    with open(os.path.join(ranking_dir, RANKING_FILE), encoding="utf-8") as f:
        counted = json.load(f).get("stats_refreshed", {})
    if (counted.get("documents"), counted.get("sha1")) == corpus_fingerprint(titles):
        return ranking_dir  # counted over these titles already (by an earlier run: jieba takes ~18 min at 1M)
    ranking = Ranking.load(ranking_dir, model_dir)
    stats = LexicalStats.from_texts(titles)
    boosters = {"lexical": ranking.lexical_model, "neural": ranking.neural_model}
    spec = dict(ranking.spec, stats_refreshed={"documents": stats.n_docs, "sha1": stats.sha1, "by": "bench"})
    path = os.path.join(root, "ranking")
    fit.write_ranking(path, spec, stats, {part: model for part, model in boosters.items() if model is not None})
    return path


def default_path(config, encoder, ranking_dir, queries):
    """query_latency's per-step p50 / p99 of SearchSystem.search (mode system: the served default) over queries."""
    from query_latency import time_mode

    from recall.milvus.search import MilvusSearcher
    from search.ranking import Ranking
    from search.system import SearchSystem

    ranking = Ranking.load(ranking_dir)
    with MilvusSearcher(config, encoder) as searcher:
        system = SearchSystem(searcher, ranking, encoder)
        try:
            timing = argparse.Namespace(warmup=5, top_k=10)
            return time_mode("system", queries, searcher, encoder, None, {"system": system}, timing)
        finally:
            system.close()


def living_worker(payload):
    """One backend's row, in a process of its own (or the feature extraction's measure, payload["extract"]: in a
    process of its own too, since Paddle's idle threads in a parent slow the rows' inserts tenfold on 2 cores)."""
    if "extract" in payload:
        return feature_extraction(**payload["extract"])
    from recall.milvus import insert, store, update
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    backend, args, texts = payload["backend"], argparse.Namespace(**payload["args"]), payload["texts"]
    n, added = args.num_docs, max(1, round(args.num_docs * args.update_fraction))
    root = tempfile.mkdtemp(prefix=f"living_bench_{backend}_{n}_")
    try:
        rss = PeakRss(os.getpid())
        rng = np.random.default_rng(0)
        projection = rng.standard_normal((LATENT_DIM, args.dim)).astype(np.float32)
        latent = rng.standard_normal((n + added, LATENT_DIM)).astype(np.float32)
        base, base_npy = os.path.join(root, "base.jsonl"), os.path.join(root, "base.npy")
        write_records(base, base_npy, list(range(n)), texts, latent, projection, payload["facets"])
        retitled = set(rng.choice(n, added, replace=False).tolist())
        daily, daily_npy = os.path.join(root, "daily.jsonl"), os.path.join(root, "daily.npy")
        numbers = sorted(retitled) + list(range(n, n + added))
        write_records(daily, daily_npy, numbers, texts, latent, projection, payload["facets"], retitled)
        result = {"backend": backend, "num_docs": n, "dim": args.dim, "new": added, "retitled": added}
        with milvus_uri(backend, root) as (uri, server_pid):
            server_rss = PeakRss(server_pid) if server_pid else None
            config = load_config(uri=uri, batch_size=args.batch_size, primary_key="paper_id")
            client = store.connect(config)
            result["engine"] = store.engine(client).name
            built = insert.update_collection(client, config, base, np.load(base_npy, mmap_mode="r"), None, None)
            result["build"] = {
                "rows_per_s": built.inserted / built.insert_seconds,
                "insert_seconds": built.insert_seconds,
                "index_seconds": built.index_seconds,
            }
            store.close(client, config)
            # the database alone: everything under root but the records and vectors written above
            result["db_mb"] = (
                directory_mb(root) - sum(os.path.getsize(p) for p in (base, base_npy, daily, daily_npy)) / 2**20
            )
            save_partial(payload, result)
            rng = np.random.default_rng(1)
            targets = rng.integers(0, n, args.queries)
            vectors = embed_latent(
                latent[targets] + 0.5 * rng.standard_normal((args.queries, LATENT_DIM)).astype(np.float32), projection
            )
            queries = payload["keyword_queries"] or [
                texts[t % len(texts)][: max(4, len(texts[t % len(texts)]) // 2)] for t in targets
            ]
            queries = [queries[i % len(queries)] for i in range(args.queries)]
            with MilvusSearcher(config) as searcher:
                result["search"] = latencies(searcher, queries, vectors)
            save_partial(payload, result)
            encoder = None
            if payload["ranking"]:
                from recall.milvus.model import TextEncoder, TimedEncoder

                encoder = TimedEncoder(TextEncoder(model_dir=args.model_dir, device=args.device))
                result["search"]["system"] = default_path(config, encoder, payload["ranking"], queries)
                save_partial(payload, result)
            client = store.connect(config)
            info = store.describe(client, config)
            client.load_collection(config.collection)
            start = time.perf_counter()
            plan = update.plan_update(client, config, daily)
            planned = time.perf_counter()
            written, _ = update.write_plan(
                client, config, info, daily, plan, update.npy_vectors(np.load(daily_npy, mmap_mode="r"))
            )
            client.flush(config.collection)
            store.wait_for_index(client, config)
            done = time.perf_counter()
            result["update"] = {
                "plan_seconds": planned - start,
                "write_seconds": done - planned,
                "rows_per_s": written / (done - planned),
                "written": written,
                "planned": {"new": len(plan.new), "retitled": len(plan.changed_text)},
            }
            save_partial(payload, result)
            doomed = [f"p{i:07d}" for i in rng.choice(n, min(args.delete, n), replace=False)]
            start = time.perf_counter()
            deleted = update.delete_papers(client, config, info, doomed)
            result["delete"] = {"papers": len(deleted), "seconds": time.perf_counter() - start}
            result["count"] = store.count_entities(client, config)
            save_partial(payload, result)
            store.close(client, config)
            with MilvusSearcher(config) as searcher:
                result["search_after"] = latencies(searcher, queries, vectors)
            if encoder is not None:  # its statistics are the build's (not refreshed)
                result["search_after"]["system"] = default_path(config, encoder, payload["ranking"], queries)
            result["client_peak_rss_mb"] = rss.stop()
            result["server_peak_rss_mb"] = server_rss.stop() if server_rss else None
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def feature_extraction(model_dir, texts, sample, num_docs, device="cpu") -> dict:
    """Docs/s of feature_extract's encoder (recall.milvus.model.TextEncoder: Paddle Inference, its default threads and
    batch) over `sample` titles cycled from texts and made unique like the bench's papers, after one warm-up batch;
    the hours for num_docs are that rate extrapolated, not measured."""
    from recall.milvus.model import TextEncoder

    encoder = TextEncoder(model_dir=model_dir, device=device)
    titles = [f"{texts[i % len(texts)]} {i}" for i in range(sample)]
    encoder.encode(titles[: encoder.batch_size], role="doc")  # warm-up: the predictor's first run plans its kernels
    start = time.perf_counter()
    vectors = encoder.encode(titles, role="doc")
    seconds = time.perf_counter() - start
    rate = sample / max(seconds, 1e-9)
    return {
        "model_dir": model_dir,
        "device": device,
        "sample_docs": sample,
        "dim": int(vectors.shape[1]),
        "seconds": round(seconds, 2),
        "docs_per_s": round(rate, 1),
        "extrapolated_docs": num_docs,
        "extrapolated_hours": round(num_docs / rate / 3600, 2),
    }


def p50_p99(timing) -> str:
    """'p50 / p99' ms of a latencies() entry or query_latency.time_mode's total; '—' when not run."""
    if timing is None:
        return "—"
    if "total_p50_ms" in timing:
        return f"{timing['total_p50_ms']:.1f} / {timing['total_p99_ms']:.1f}"
    return f"{timing['p50_ms']:.1f} / {timing['p99_ms']:.1f}"


def markdown(rows, args, load, extraction=None):
    lines = [
        f"# A living index: {args.num_docs:,} papers (`{command_line()}`)",
        "",
        f"Load average at the start: {load}. Update: {args.update_fraction:.1%} new papers and as many retitled, in a "
        "file of their own; delete: papers by id. Vectors: synthetic (dim "
        f"{args.dim}), not the model's: BM25 and the default path's lexical part see CSL-shaped titles, dense and the "
        "default path's cosine see random vectors of the right size.",
        "",
        "| backend | build rows/s | db MB | BM25 p50 / p99 ms | dense p50 / p99 ms | default path p50 / p99 ms "
        "| update: plan s, write s (rows/s) | delete s | after: BM25 / dense / default path p50 ms "
        "| peak RSS MB (client + server) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:  # a row stopped by its time box (or dead) shows what it finished, then why it stopped
        s, a, u, d = (r.get(key) or {} for key in ("search", "search_after", "update", "delete"))
        cells = [
            f"{r['build']['rows_per_s']:,.0f}" if "build" in r else "",
            f"{r['db_mb']:,.0f}" if "db_mb" in r else "",
            p50_p99(s.get("bm25")),
            p50_p99(s.get("dense")),
            p50_p99(s.get("system")),
            f"{u['plan_seconds']:.1f}, {u['write_seconds']:.1f} ({u['rows_per_s']:,.0f})" if u else "",
            f"{d['seconds']:.2f}" if d else "",
            " / ".join(f"{a[mode]['p50_ms']:.1f}" if mode in a else "—" for mode in ("bm25", "dense"))
            + (f" / {a['system']['total_p50_ms']:.1f}" if "system" in a else "")
            if a
            else "",
            f"{r['client_peak_rss_mb'] + (r['server_peak_rss_mb'] or 0):,.0f}" if "client_peak_rss_mb" in r else "",
        ]
        if "error" in r:
            cells[-1] = f"stopped: {r['error']}"
        lines.append(f"| {r['backend']} | " + " | ".join(cells) + " |")
    steps = [(r["backend"], r["search"]["system"]) for r in rows if "system" in r.get("search", {})]
    if steps:
        lines += [
            "",
            f"Default path: search.system.SearchSystem with `{args.ranking_dir}` (its LightGBM models as fitted, its "
            f"lexical statistics counted over the {args.num_docs:,} titles of the build) and the query encoder "
            f"`{args.model_dir}` through Paddle Inference; per step p50 ms: "
            + "; ".join(
                f"{backend}: encode {t['encode_p50_ms']:.1f}, search {t['search_p50_ms']:.1f}, features "
                f"{t['features_p50_ms']:.1f}, rank {t['rank_p50_ms']:.1f}"
                for backend, t in steps
            )
            + ". After the update its statistics are the build's (not refreshed); the peak RSS includes the encoder.",
        ]
    if extraction:
        lines += [
            "",
            f"Feature extraction (Paddle Inference, `{extraction['model_dir']}`, {extraction['device']}, dim "
            f"{extraction['dim']}): {extraction['docs_per_s']:,.0f} docs/s measured on {extraction['sample_docs']:,} "
            f"titles; **extrapolated**, not run: {extraction['extrapolated_docs']:,} papers would take "
            f"~{extraction['extrapolated_hours']:.1f} h at that rate.",
        ]
    return "\n".join(lines) + "\n"


def command_line():
    return "python bench/living_bench.py " + " ".join(sys.argv[1:])


def main(argv=None):
    from ns_common.utils import logger

    args = parse_args(argv)
    corpus_file = args.corpus_file or (CSL_CORPUS if os.path.isfile(CSL_CORPUS) else SAMPLE_CORPUS)
    texts = corpus_texts(corpus_file)
    with open(SAMPLE_PAPERS, encoding="utf-8") as f:
        facets = [[p.get("category", ""), p.get("year", 0)] for p in map(json.loads, f)]
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    payload = {
        "args": vars(args),
        "texts": texts,
        "facets": facets,
        "keyword_queries": keyword_queries(corpus_file, args.queries),
    }
    extraction = None
    if args.model_dir:  # before the backends' rows (one measurement at a time on a small machine)
        measure = dict(model_dir=args.model_dir, texts=texts, sample=args.embed_sample, num_docs=args.num_docs)
        extraction = run_isolated("lite", __file__, {"extract": dict(measure, device=args.device)})
        if "error" in extraction:
            raise SystemExit(f"feature extraction: {extraction['error']}")
        logger.info(f"feature extraction: {json.dumps(extraction)}")
        if args.ranking_dir and args.dim not in (None, extraction["dim"]):
            raise SystemExit(f"--dim {args.dim}: the default path needs --model_dir's dimension, {extraction['dim']}")
        args.dim = args.dim or extraction["dim"]
    args.dim = args.dim or 256
    payload["args"] = vars(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="living_bench_ranking_") as root:
        payload["ranking"] = None
        if args.ranking_dir:
            start = time.perf_counter()
            titles = [paper_title(texts, n) for n in range(args.num_docs)]
            payload["ranking"] = served_ranking(args.ranking_dir, args.model_dir, titles, root)
            del titles
            logger.info(
                f"the ranking's lexical statistics over {args.num_docs} titles: {time.perf_counter() - start:.0f} s"
            )
        for backend in args.backends:
            rows.append({"backend": backend, **run_isolated(backend, __file__, payload, args.time_box_s)})
            logger.info(f"{backend}: {json.dumps(rows[-1])}")
    os.makedirs(args.output_dir, exist_ok=True)
    report = markdown(rows, args, load, extraction)
    with open(os.path.join(args.output_dir, "living_bench.md"), "w", encoding="utf-8") as f:
        f.write(report)
    with open(os.path.join(args.output_dir, "living_bench.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "command": command_line(),
                "load_average": load,
                "corpus_file": corpus_file,
                "feature_extraction": extraction,
                "rows": rows,
            },
            f,
            indent=2,
        )
    print(report)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker_main(sys.argv[2], living_worker)
    else:
        main()
