"""The default search path ("the system"): recall, then a learned ranking (the fine-ranking step, 精排).

    candidates  BM25's top CANDIDATES in Milvus (character uni+bigrams: the keyword-search bar), with their
                stored vectors in the same reply when a dense feature is used
    lexical     LightGBM LambdaMART over search.features (how the title covers the query's keywords, BM25 under
                other tokenisations, the BM25 score and rank), trained on every training query
    neural      where it earned its place: a second LambdaMART over the lexical score, the dense cosine (and its
                rank among the candidates) and the ERNIE-Gram reranker's logit, trained only on queries the
                neural models never saw
    fallback    BM25's own order, when no learned ranking beat it by a standard error in cross-validation

search/fit.py chooses all of it by k-fold cross-validation over the training queries (never dev) and writes the
ranking directory (ranking.json, the LightGBM models in their text format, the lexical statistics); query.py, the
web service, the pipeline and this API load it:

    ranking = Ranking.load("output/pipeline/sample/export/ranking")
    with MilvusSearcher(load_config(uri="output/pipeline/sample/milvus/neural_search.db")) as searcher:
        system = SearchSystem(searcher, ranking)          # + encoder / reranker when the ranking uses them
        for hit in system.search("语言 文化 差异", top_k=10):
            print(hit.id, hit.score, hit.text)
"""
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ns_common.io import weights_fingerprint
from ns_common.utils import fail
from recall.milvus.search import Hit, SearchError, check_model, check_top_k
from search.features import FEATURES, LexicalStats, lexical_features

CANDIDATES = 50  # BM25 hits a query's ranking reorders
RANKING_FILE = "ranking.json"
FORMAT = "learned-ranking-1"
# the neural model's inputs: the lexical model's score and the neural signals
NEURAL_FEATURES = ["lexical_score", "cosine", "cosine_rank", "rerank_logit"]
DENSE_FEATURES = {"cosine", "cosine_rank"}


def default_ranking_dir(model_dir):
    """Where the pipeline puts the ranking: `ranking` beside the recall model's export (export/ranking)."""
    return os.path.join(os.path.dirname(os.path.normpath(model_dir)), "ranking") if model_dir else None


class Ranking:
    """A fitted ranking directory (search/fit.py): which signals rank, and the models that combine them."""

    def __init__(self, directory, spec, stats, lexical_model=None, neural_model=None):
        self.directory, self.spec, self.stats = directory, spec, stats
        self.lexical_model, self.neural_model = lexical_model, neural_model

    @classmethod
    def load(cls, directory, model_dir=None, reranker_dir=None):
        """Reads the directory; one-line errors when it is missing, not a ranking, or fitted with other models
        than the model_dir / reranker_dir given for the signals it uses."""
        from search.learn import load_model

        path = os.path.join(directory or "", RANKING_FILE)
        if not directory or not os.path.isfile(path):
            fail(f"no fitted ranking at {directory}: fit one with python -m search.fit (the pipeline does, into "
                 "<output>/export/ranking), or choose a leg with --mode dense|bm25|hybrid")
        try:
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
            if spec.get("format") != FORMAT:
                raise ValueError(f"format {spec.get('format')!r}, expected {FORMAT!r}")
            stats = LexicalStats.load(os.path.join(directory, spec["stats_file"]))
            lexical = load_model(os.path.join(directory, spec["lexical"]["model_file"])) if spec["lexical"] else None
            neural = load_model(os.path.join(directory, spec["neural"]["model_file"])) if spec["neural"] else None
        except (OSError, ValueError, KeyError, TypeError) as e:
            fail(f"{path}: not a ranking written by search.fit of this version ({type(e).__name__}: {e}); refit it "
                 "(python -m search.fit)")
        ranking = cls(directory, spec, stats, lexical, neural)
        for key, given, flag in (("recall_model", model_dir, "--model_dir"), ("reranker", reranker_dir, "--reranker_dir")):
            fitted = spec["fitted_with"].get(key)
            if given and ranking.needs(key) and fitted != weights_fingerprint(given):
                fail(f"{path} was fitted with another {key.replace('_', ' ')} than {flag} {given}: refit it "
                     "(python -m search.fit) or pass the models it was fitted with")
        return ranking

    @property
    def chosen(self):
        """"bm25" (BM25's order), "lexical" (the lexical model) or "neural" (the lexical model, then the neural one)."""
        return self.spec["chosen"]

    @property
    def neural_features(self):
        return self.spec["neural"]["features"] if self.neural_model is not None else []

    @property
    def uses_dense(self):
        return bool(DENSE_FEATURES & set(self.neural_features))

    @property
    def uses_reranker(self):
        return "rerank_logit" in self.neural_features

    def needs(self, component):
        """Whether serving this ranking needs the "recall_model" (query vectors) or the "reranker"."""
        return self.uses_dense if component == "recall_model" else self.uses_reranker

    def check_corpus(self, collection_meta, where):
        """The lexical statistics must be the collection's corpus: another one gives wrong features, silently."""
        built = (collection_meta or {}).get("corpus")
        if built and built.get("sha1") != self.stats.sha1:
            fail(f"{os.path.join(self.directory, RANKING_FILE)} was fitted on another corpus ({self.stats.n_docs} documents, sha1 "
                 f"{self.stats.sha1[:12]}) than the collection at {where} holds ({built.get('documents')} documents, sha1 "
                 f"{str(built.get('sha1'))[:12]}): refit it (python -m search.fit) on that collection")

    def lexical_matrix(self, query, hits):
        """[n, features] inputs of the lexical model (None when BM25's order was kept: nothing to compute)."""
        if self.lexical_model is None:
            return None
        bm25 = np.array([h.score for h in hits], dtype=np.float64)
        matrix = lexical_features(query, [h.text for h in hits], bm25, self.stats)
        return matrix[:, [FEATURES.index(name) for name in self.spec["lexical"]["features"]]]

    def lexical_scores(self, hits, matrix):
        """The lexical model's score of each hit (BM25's own score where no lexical model was kept)."""
        if self.lexical_model is None:
            return np.array([h.score for h in hits], dtype=np.float64)
        return self.lexical_model.predict(matrix, num_threads=1)


def neural_matrix(names, lexical_score, cosine=None, rerank_logit=None):
    """[n, len(names)] inputs of the neural model: the lexical score, the dense cosine, its 1-based rank among the
    candidates and the reranker's logit (a signal not computed: absent from names)."""
    columns = {"lexical_score": lexical_score}
    if cosine is not None:
        columns["cosine"] = cosine
        columns["cosine_rank"] = np.argsort(np.argsort(-cosine, kind="stable"), kind="stable") + 1.0
    if rerank_logit is not None:
        columns["rerank_logit"] = rerank_logit
    return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in names])


def rerank_logits(reranker, query, texts):
    """The reranker's logit of each (query, text): its probability, back on the scale trees split well."""
    probs = np.clip(np.asarray(reranker.score(query, texts), dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(probs) - np.log1p(-probs)


class SearchSystem:
    """Recall and the learned ranking over one collection. `timings` holds the seconds of the last call per step:
    encode, search (the BM25 leg with its stored vectors), features, rerank, rank (the models), total."""

    def __init__(self, searcher, ranking, encoder=None, reranker=None, allow_model_mismatch=None):
        """allow_model_mismatch: serve a collection whose vectors another model than encoder's computed (default: as
        the searcher was told; refused otherwise, ModelMismatchError)."""
        if "bm25" not in searcher.modes:
            fail(f"the search system needs the BM25 field, which collection {searcher.config.collection} lacks: "
                 "rebuild it with milvus-lite 2.5 or Milvus >= 2.5, or use --mode dense")
        if ranking.uses_dense and encoder is None:
            fail("the fitted ranking uses the dense cosine: give the recall model it was fitted with (--model_dir)")
        if ranking.uses_reranker and reranker is None:
            fail("the fitted ranking uses the reranker: give the reranker it was fitted with (--reranker_dir)")
        ranking.check_corpus(searcher.info.meta, f"{searcher.config.uri} ({searcher.config.collection})")
        # the searcher's own encoder was checked when it opened the collection
        if encoder is not None and ranking.uses_dense and encoder is not getattr(searcher, "encoder", None):
            allow = getattr(searcher, "allow_model_mismatch", False) if allow_model_mismatch is None else allow_model_mismatch
            check_model(searcher.info, searcher.config, encoder, allow)
        self.searcher, self.ranking, self.encoder, self.reranker = searcher, ranking, encoder, reranker
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lexical-leg")
        self.timings = {}

    @property
    def mode(self):
        return "system"

    def search(self, query, top_k=10):
        if not isinstance(query, str):
            raise SearchError(f"the query is {type(query).__name__}, not text (str)")
        return self.search_batch([query], top_k)[0]

    def search_batch(self, queries, top_k=10):
        """Ranked hits per query; a hit's score is the ranking's (the model's score, or BM25's)."""
        start = time.perf_counter()
        top_k = check_top_k(top_k)
        if not 1 <= top_k <= CANDIDATES:
            raise SearchError(f"the search system ranks BM25's top {CANDIDATES} a query: top_k must be between 1 and {CANDIDATES}, got {top_k}")
        queries = self.searcher.check_request(queries, top_k, "bm25")
        uses_dense = self.ranking.uses_dense
        # the lexical leg needs no query vector: it runs in a second thread while the queries are encoded
        lexical = self.pool.submit(self.searcher.bm25_with_vectors, queries, CANDIDATES, with_vectors=uses_dense)
        vectors = self.encoder.encode(queries) if uses_dense else None
        encoded = time.perf_counter()
        legs = lexical.result()
        searched = time.perf_counter()
        results, steps = [], {"features": 0.0, "rerank": 0.0, "rank": 0.0}
        for i, (query, found) in enumerate(zip(queries, legs)):
            hits = [hit for hit, _ in found]
            results.append(self._rank(query, hits, found, None if vectors is None else vectors[i], steps)[:top_k] if hits else [])
        total = time.perf_counter() - start
        self.timings = {"encode": encoded - start, "search": searched - encoded, **steps, "total": total}
        return results

    def _rank(self, query, hits, found, query_vector, steps):
        t = time.perf_counter()
        matrix = self.ranking.lexical_matrix(query, hits)
        steps["features"] += time.perf_counter() - t
        t = time.perf_counter()
        scores = self.ranking.lexical_scores(hits, matrix)
        steps["rank"] += time.perf_counter() - t
        if self.ranking.neural_model is not None:
            cosine = np.array([float(np.dot(stored, query_vector)) for _, stored in found]) if query_vector is not None else None
            t = time.perf_counter()
            logits = rerank_logits(self.reranker, query, [h.text for h in hits]) if self.ranking.uses_reranker else None
            steps["rerank"] += time.perf_counter() - t
            t = time.perf_counter()
            scores = self.ranking.neural_model.predict(neural_matrix(self.ranking.neural_features, scores, cosine, logits), num_threads=1)
            steps["rank"] += time.perf_counter() - t
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))  # ties keep BM25's order
        return [Hit(hits[i].id, float(scores[i]), hits[i].text) for i in order]
