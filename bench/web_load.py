r"""Load test of the web service (search.web_service.py), loopback only, standard library only.

    python -m search.web_service --model_dir ... &            # the service under test
    python bench/web_load.py --url http://127.0.0.1:8000 --queries data/sample/recall/dev.csv \
        --clients 8 --requests 300 --bad_ratio 0.2 [--json output/web_load.json]

1. Asks each distinct (query, mode) once, one request at a time: the reference answers.
2. Sends --requests requests from --clients concurrent clients (one keep-alive connection each): search
   requests over the modes the service offers, some embed requests, and --bad_ratio of bad requests
   (unknown mode, top_k out of range, empty or too long query, malformed JSON, wrong types, too many
   texts, oversized body, wrong method/path, rerank without a reranker).
3. Checks: every good request answered 200 with the reference's ranked ids (embed: same vector); every
   bad one a 4xx with an {"error": ...} body; the service still healthy afterwards.

Prints one summary line with p50/p90/p99 latencies; exit code 1 when any check failed.
"""

import argparse
import http.client
import json
import math
import queue
import random
import sys
import threading
import time
from urllib.parse import urlsplit

BAD_REQUESTS = {
    # name: (method, path, JSON body or raw bytes); each must be answered 4xx with {"error": ...} (413: any body)
    "unknown_mode": ("POST", "/api/search", {"query": "生态风险评价", "mode": "fuzzy"}),
    "top_k_zero": ("POST", "/api/search", {"query": "生态风险评价", "top_k": 0}),
    "top_k_huge": ("POST", "/api/search", {"query": "生态风险评价", "top_k": 100000}),
    "empty_query": ("POST", "/api/search", {"query": "   "}),
    "query_not_text": ("POST", "/api/search", {"query": 123}),
    "too_long_query": ("POST", "/api/search", {"query": "文" * 20000}),
    "unknown_field": ("POST", "/api/search", {"query": "生态风险评价", "topk": 3}),
    "malformed_json": ("POST", "/api/search", b'{"query": "\xe7\x94\x9f\xe6\x80\x81", "top_k": '),
    "not_json": ("POST", "/api/search", b"query=abc"),
    "too_many_texts": ("POST", "/api/embed", {"texts": ["文本"] * 1000}),
    "empty_texts": ("POST", "/api/embed", {"texts": []}),
    "oversized_body": ("POST", "/api/embed", {"texts": ["文" * 400_000]}),  # 1.2 MB > the default 1 MiB
    "wrong_method": ("GET", "/api/search", None),
    "unknown_path": ("GET", "/api/nothing", None),
    "rerank_without_reranker": ("POST", "/api/search", {"query": "生态风险评价", "rerank": True}),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service (loopback)")
    parser.add_argument("--queries", default="data/sample/recall/dev.csv", help="one query a line (first TAB field)")
    parser.add_argument("--max_queries", type=int, default=20, help="distinct queries used")
    load = parser.add_argument_group("load")
    load.add_argument("--clients", type=int, default=8, help="concurrent clients")
    load.add_argument("--requests", type=int, default=300, help="requests sent under load")
    load.add_argument("--timeout", type=float, default=60, help="seconds per request")
    mix = parser.add_argument_group("request mix")
    mix.add_argument("--bad_ratio", type=float, default=0.2, help="share of bad requests")
    mix.add_argument("--embed_ratio", type=float, default=0.1, help="share of (good) embed requests")
    mix.add_argument("--top_k", type=int, default=10, help="results a good search request asks for")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--json", default=None, help="also write the summary as JSON to this file")
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"--url {args.url}: this load test only targets a loopback http:// address")
    if args.clients < 1 or args.requests < 1 or not 0 <= args.bad_ratio <= 1 or not 0 <= args.embed_ratio <= 1:
        parser.error("--clients and --requests must be positive, --bad_ratio and --embed_ratio in [0, 1]")
    return args


class Client:
    """One keep-alive HTTP connection (reopened after the server closes it, e.g. after a 413)."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.connection = None

    def request(self, method, path, body=None):
        """-> (status, parsed JSON body or None, seconds)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            start = time.perf_counter()
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                raw = response.read()
            except (http.client.HTTPException, ConnectionError) as e:
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    return 0, {"error": f"{type(e).__name__}: {e}"}, time.perf_counter() - start
                continue  # a kept-alive connection the server had closed: one retry on a fresh one
            seconds = time.perf_counter() - start
            if response.getheader("connection", "").lower() == "close":
                self.connection.close()
                self.connection = None
            try:
                return response.status, json.loads(raw), seconds
            except ValueError:
                return response.status, None, seconds


def read_queries(path, limit):
    queries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            query = line.rstrip("\n").split("\t")[0].strip()
            if query and query not in queries:
                queries.append(query)
            if len(queries) == limit:
                break
    if not queries:
        sys.exit(f"error: --queries {path}: no queries")
    return queries


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def plan_requests(args, queries, modes, has_reranker):
    """The seeded list of (kind, name, method, path, body) sent under load."""
    rng = random.Random(args.seed)
    bad_names = [n for n in BAD_REQUESTS if not (n == "rerank_without_reranker" and has_reranker)]
    plan = []
    for i in range(args.requests):
        draw = rng.random()
        if draw < args.bad_ratio:
            name = bad_names[i % len(bad_names)]
            plan.append(("bad", name, *BAD_REQUESTS[name]))
        elif draw < args.bad_ratio + args.embed_ratio:
            query = rng.choice(queries)
            plan.append(("embed", query, "POST", "/api/embed", {"texts": [query]}))
        else:
            query, mode = rng.choice(queries), rng.choice(modes)
            plan.append(
                ("search", (query, mode), "POST", "/api/search", {"query": query, "mode": mode, "top_k": args.top_k})
            )
    return plan


def reference_answers(client, plan):
    """The answer to each distinct good request, asked one at a time (no concurrency)."""
    expected = {}
    for kind, key, method, path, body in plan:
        if kind == "bad" or (kind, key) in expected:
            continue
        status, data, _ = client.request(method, path, body)
        if status != 200:
            sys.exit(f"error: reference request {kind} {key} answered {status}: {data}")
        expected[(kind, key)] = answer_of(kind, data)
    return expected


def answer_of(kind, data):
    if kind == "search":
        return [hit["id"] for hit in data["hits"]]
    return data["vectors"][0]


def same_answer(kind, got, expected):
    if kind == "search":
        return got == expected
    return len(got) == len(expected) and all(abs(a - b) <= 1e-5 for a, b in zip(got, expected))


def main(argv=None):
    args = parse_args(argv)
    url = urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    probe = Client(host, port, args.timeout)
    status, health, _ = probe.request("GET", "/api/health")
    if status != 200:
        sys.exit(f"error: {args.url}/api/health answered {status}: is the service running?")
    queries = read_queries(args.queries, args.max_queries)
    plan = plan_requests(args, queries, health["modes"], bool(health.get("reranker")))
    expected = reference_answers(probe, plan)

    jobs = queue.Queue()
    for item in plan:
        jobs.put(item)
    results, lock = [], threading.Lock()

    def client_loop():
        client = Client(host, port, args.timeout)
        while True:
            try:
                kind, key, method, path, body = jobs.get_nowait()
            except queue.Empty:
                return
            status, data, seconds = client.request(method, path, body)
            if kind == "bad":
                # a body announced over the limit gets Starlette's own 413 (text), the rest {"error": ...}
                ok = 400 <= status < 500 and (isinstance(data, dict) and bool(data.get("error")) or status == 413)
            else:
                ok = status == 200 and same_answer(kind, answer_of(kind, data), expected[(kind, key)])
            with lock:
                results.append(
                    {
                        "kind": kind,
                        "name": key if kind == "bad" else kind,
                        "status": status,
                        "ok": ok,
                        "seconds": seconds,
                        "error": (data or {}).get("error") if isinstance(data, dict) else None,
                    }
                )

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    healthy_after = probe.request("GET", "/api/health")[0] == 200

    good = [r for r in results if r["kind"] != "bad"]
    bad = [r for r in results if r["kind"] == "bad"]
    latencies_ms = [r["seconds"] * 1000 for r in good] or [0.0]
    failures = [r for r in results if not r["ok"]]
    summary = {
        "requests": len(results),
        "clients": args.clients,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(results) / wall, 1),
        "good": len(good),
        "good_ok": sum(r["ok"] for r in good),
        "search": sum(r["kind"] == "search" for r in results),
        "embed": sum(r["kind"] == "embed" for r in results),
        "bad": len(bad),
        "bad_rejected": sum(r["ok"] for r in bad),
        "bad_statuses": sorted({f"{r['name']}={r['status']}" for r in bad}),
        "p50_ms": round(percentile(latencies_ms, 50), 1),
        "p90_ms": round(percentile(latencies_ms, 90), 1),
        "p99_ms": round(percentile(latencies_ms, 99), 1),
        "max_ms": round(max(latencies_ms), 1),
        "modes": health["modes"],
        "reference_requests": len(expected),
        "healthy_after": healthy_after,
        "failures": failures[:10],
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False, indent=2)
    for failure in failures[:10]:
        print(
            f"FAILED {failure['kind']} {failure['name']}: status {failure['status']} {failure['error'] or ''}",
            file=sys.stderr,
        )
    print(
        f"{summary['requests']} requests from {args.clients} clients in {wall:.1f}s ({summary['requests_per_s']}/s): "
        f"good {summary['good_ok']}/{summary['good']} correct ({summary['search']} search over "
        f"{'/'.join(health['modes'])}, {summary['embed']} embed), bad {summary['bad_rejected']}/{summary['bad']} "
        f"rejected with 4xx; good latency p50 {summary['p50_ms']} ms, p90 {summary['p90_ms']} ms, "
        f"p99 {summary['p99_ms']} ms, max {summary['max_ms']} ms; healthy after: {healthy_after}"
        + (f"; JSON -> {args.json}" if args.json else "")
    )
    return 0 if not failures and healthy_after else 1


if __name__ == "__main__":
    sys.exit(main())
