"""The default search path ("the system"): two recall legs, a fitted fusion, and a final ranking that adds the
reranker to the recall evidence instead of replacing it.

    lexical leg  BM25 on character uni+bigrams in Milvus (the keyword-search bar)   -> top LEG_HITS
    dense leg    the recall model's vectors in Milvus (HNSW)                          -> top LEG_HITS
    fusion       a linear score of per-candidate features (BM25 score, cosine, both ranks) over the union
    final        the fused top FINAL_CANDIDATES rescored with the same features + the ERNIE-Gram logit

The weights of both linear scores are fitted on held-out training queries by a listwise logistic model
(softmax over a query's candidates, the gold one as the target), with the L2 strength picked by k-fold
cross-validation and a fallback to the best single signal when the fitted model does not beat it there
(recall/milvus/fit_ranking.py). They are saved as ranking.json next to the exported recall model and read
by query.py, the web service, the pipeline and this API:

    system = SearchSystem(searcher, encoder, reranker, load_ranking("output/.../export/recall/ranking.json"))
    hits = system.search("语言 文化 差异", top_k=10)
"""
import hashlib
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ns_common.utils import fail
from recall.milvus.search import Hit, SearchError

LEG_HITS = 100  # candidates taken from each leg
FINAL_CANDIDATES = 50  # fused candidates the reranker rescores
RANK_K = 60  # the rank features are RANK_K / (RANK_K + rank), as in reciprocal rank fusion
FUSION_FEATURES = ["bm25", "cosine", "bm25_rank", "dense_rank"]
FINAL_FEATURES = FUSION_FEATURES + ["rerank_logit"]
RANKING_FILE = "ranking.json"


@dataclass
class Candidate:
    id: int
    text: str
    bm25: float | None = None  # BM25 score when in the lexical leg's hits
    bm25_rank: int | None = None  # 1-based
    cosine: float | None = None  # exact cosine with the query (lexical-only ones: from the vector in the BM25 reply)
    dense_rank: int | None = None
    rerank_logit: float | None = None


def recall_candidates(searcher, queries, vectors, leg_hits=LEG_HITS):
    """Union of both legs' hits per query, each with its BM25 score, cosine and ranks (None where a leg missed it).
    vectors None: the lexical leg alone (for weights that give the dense features nothing)."""
    lexical = lexical_leg(searcher, queries, with_vectors=vectors is not None, leg_hits=leg_hits)
    return merge_legs(dense_leg(searcher, queries, vectors, leg_hits), lexical, vectors)


def lexical_leg(searcher, queries, with_vectors, leg_hits=LEG_HITS):
    """The BM25 hits per query as [(Hit, stored vector or None), ...]; the vectors give lexical-only candidates
    their exact cosine."""
    if with_vectors:
        return searcher.bm25_with_vectors(queries, leg_hits)
    return [[(hit, None) for hit in hits] for hits in searcher.search_batch(queries, leg_hits, "bm25")]


def dense_leg(searcher, queries, vectors, leg_hits=LEG_HITS):
    if vectors is None:
        return [[] for _ in queries]
    return searcher.search_batch(queries, leg_hits, "dense", vectors=vectors)


def merge_legs(dense, lexical, vectors):
    lists = []
    for i, (d_hits, b_hits) in enumerate(zip(dense, lexical)):
        by_id = {}
        for rank, (hit, stored) in enumerate(b_hits, start=1):
            cosine = float(np.dot(stored, vectors[i])) if stored is not None else None
            by_id[hit.id] = Candidate(hit.id, hit.text, bm25=hit.score, bm25_rank=rank, cosine=cosine)
        for rank, hit in enumerate(d_hits, start=1):
            cand = by_id.setdefault(hit.id, Candidate(hit.id, hit.text))
            cand.cosine, cand.dense_rank = hit.score, rank
        lists.append(list(by_id.values()))
    return lists


def feature_matrix(cands, names):
    """[n, len(names)] features of one query's candidates. BM25 is divided by the query's best BM25 score (its
    scale grows with the query's length); a candidate the lexical leg missed gets the leg's lowest score, a
    rank feature of a leg that missed it counts as rank LEG_HITS + 1."""
    bm25 = [c.bm25 for c in cands if c.bm25 is not None]
    top, floor = (max(bm25), min(bm25)) if bm25 else (1.0, 0.0)
    columns = {
        "bm25": [(c.bm25 if c.bm25 is not None else floor) / max(top, 1e-9) for c in cands],
        "cosine": [c.cosine if c.cosine is not None else -1.0 for c in cands],
        "bm25_rank": [RANK_K / (RANK_K + (c.bm25_rank or LEG_HITS + 1)) for c in cands],
        "dense_rank": [RANK_K / (RANK_K + (c.dense_rank or LEG_HITS + 1)) for c in cands],
        "rerank_logit": [c.rerank_logit if c.rerank_logit is not None else 0.0 for c in cands],
    }
    return np.array([columns[n] for n in names], dtype=np.float64).T.reshape(len(cands), len(names))


def order(cands, weights, names):
    """Candidates sorted by weights . features (best first); ties keep the lexical leg's order."""
    if not cands:
        return []
    scores = feature_matrix(cands, names) @ np.asarray(weights, dtype=np.float64)
    tie = [c.bm25_rank or LEG_HITS + 1 for c in cands]
    idx = sorted(range(len(cands)), key=lambda i: (-scores[i], tie[i]))
    return [(cands[i], float(scores[i])) for i in idx]


def rerank_logits(reranker, query, cands):
    probs = np.clip(reranker.score(query, [c.text for c in cands]), 1e-6, 1 - 1e-6)
    for c, p in zip(cands, probs):
        c.rerank_logit = float(math.log(p) - math.log1p(-p))


def weighted_features(entry):
    return {name for name, weight in zip(entry["features"], entry["weights"]) if weight != 0}


def file_fingerprint(model_dir):
    """sha1 of a model directory's weights (inference.pdiparams, else model_state.pdparams)."""
    for name in ("inference.pdiparams", "model_state.pdparams"):
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                return hashlib.sha1(f.read()).hexdigest()
    return None


def default_ranking_file(model_dir):
    return os.path.join(model_dir, RANKING_FILE) if model_dir else None


def load_ranking(path, model_dir=None, reranker_dir=None):
    """The fitted weights; one-line errors when missing or fitted with other models than the ones given."""
    if not path or not os.path.isfile(path):
        fail(f"no fitted ranking at {path}: fit one with python -m recall.milvus.fit_ranking (the pipeline does), "
             "or choose a leg with --mode dense|bm25|hybrid")
    try:
        with open(path, encoding="utf-8") as f:
            ranking = json.load(f)
        ranking["fusion"]["weights"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"{path}: not a ranking file written by recall.milvus.fit_ranking ({type(e).__name__}: {e})")
    checks = (("recall_model", model_dir, "--model_dir"), ("reranker", reranker_dir, "--reranker_dir"))
    for key, directory, flag in checks:
        fitted = (ranking.get("fitted_with") or {}).get(key)
        if directory and fitted and (key == "recall_model" or ranking.get("final")) and file_fingerprint(directory) != fitted:
            fail(f"{path} was fitted with another {key.replace('_', ' ')} than {flag} {directory}: refit it "
                 "(python -m recall.milvus.fit_ranking) or pass the models it was fitted with")
    return ranking


class SearchSystem:
    """Fused recall and, with a reranker and fitted final weights, the final ranking. `timings` holds the
    seconds of the last call per step: encode, search (both legs + stored vectors), rerank, rank."""

    def __init__(self, searcher, encoder, reranker=None, ranking=None):
        if "bm25" not in searcher.modes:
            fail(f"the search system needs the BM25 field, which collection {searcher.config.collection} lacks: "
                 "rebuild it with Milvus >= 2.5 or Milvus Lite, or use --mode dense")
        self.searcher, self.encoder, self.reranker, self.ranking = searcher, encoder, reranker, ranking
        self.final = reranker is not None and bool(ranking.get("final"))
        # only what the fitted weights use is computed: a dense feature or the reranker with weight 0 (the fit
        # kept a single signal) costs no query encoding, dense search or reranking, and changes no ranking
        used = weighted_features(ranking["fusion"]) | (weighted_features(ranking["final"]) if self.final else set())
        self.uses_dense = bool(used & {"cosine", "dense_rank"})
        self.uses_reranker = self.final and "rerank_logit" in used
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lexical-leg")
        self.timings = {}

    @property
    def mode(self):
        return "system" if self.final else "fusion"

    def search(self, query, top_k=10):
        return self.search_batch([query], top_k)[0]

    def search_batch(self, queries, top_k=10):
        """Ranked hits per query; a hit's score is the final (or fused) linear score."""
        start = time.perf_counter()
        if top_k > LEG_HITS:
            raise SearchError(f"the search system ranks at most {LEG_HITS} candidates a query, got top_k {top_k}")
        queries = self.searcher._check(queries, top_k, "hybrid" if self.uses_dense else "bm25")
        # the lexical leg needs no query vector: it runs in a second thread while the queries are encoded and
        # the dense leg searched (Paddle Inference and the Milvus reply both leave the GIL free for it)
        lexical = self.pool.submit(lexical_leg, self.searcher, queries, self.uses_dense)
        vectors = self.encoder.encode(queries) if self.uses_dense else None
        encoded = time.perf_counter()
        lists = merge_legs(dense_leg(self.searcher, queries, vectors), lexical.result(), vectors)
        searched = time.perf_counter()
        fusion = self.ranking["fusion"]
        results, rerank_s = [], 0.0
        for query, cands in zip(queries, lists):
            ranked = order(cands, fusion["weights"], fusion["features"])
            if self.final:
                head = [c for c, _ in ranked[:FINAL_CANDIDATES]]
                if self.uses_reranker:
                    t = time.perf_counter()
                    rerank_logits(self.reranker, query, head)
                    rerank_s += time.perf_counter() - t
                final = self.ranking["final"]
                ranked = order(head, final["weights"], final["features"]) + ranked[FINAL_CANDIDATES:]
            results.append([Hit(c.id, score, c.text) for c, score in ranked[:top_k]])
        total = time.perf_counter() - start
        self.timings = {"encode": encoded - start, "search": searched - encoded, "rerank": rerank_s,
                        "rank": total - (searched - start) - rerank_s, "total": total}
        return results
