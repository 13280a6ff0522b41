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
web service, the pipeline and this API load it. In one line, from what `make run` (scripts/pipeline.py) built:

    from search import SearchSystem
    with SearchSystem.from_pipeline("output/pipeline/sample") as system:
        results = system.search("语言 文化 差异", top_k=10)      # Results: Hits (id, text, score), .timings_ms
        vectors = system.encode(["中西方语言与文化的差异"])      # the recall model's vectors

or piece by piece:

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

from ns_common.errors import ConfigError, ModelMismatchError
from ns_common.io import weights_fingerprint
from recall.milvus.search import MODES, Hit, SearchError, check_filter, check_model, check_top_k
from search.features import FEATURES, LexicalStats, lexical_features
from search.highlight import annotate

CANDIDATES = 50  # BM25 hits a query's ranking reorders
RANKING_FILE = "ranking.json"
FORMAT = "learned-ranking-1"
# the neural model's inputs: the lexical model's score and the neural signals
NEURAL_FEATURES = ["lexical_score", "cosine", "cosine_rank", "cosine_gap", "rank_fusion", "rerank_logit"]
DENSE_FEATURES = {"cosine", "cosine_rank", "cosine_gap", "rank_fusion"}
RRF_K = 60  # reciprocal-rank fusion's constant (Milvus' RRFRanker default)


def needed_components(mode, ranking=None, rerank=False):
    """The one place that says which loaded parts a search needs: a set of "encoder" (the recall model: query
    vectors), "reranker" and "ranking" (the fitted ranking). mode: "system", "dense", "bm25", "hybrid" or "by_id"
    (a stored document's neighbours: nothing loaded). For mode system the ranking decides about the encoder and
    the reranker (None: not loaded yet, only "ranking" is known); rerank: the plain reranking of a leg's hits."""
    if mode not in ("system", "by_id") + MODES:
        raise ConfigError(f"mode {mode!r}: expected one of system, {', '.join(MODES)}")
    needed = {"encoder"} if mode in ("dense", "hybrid") else set()
    if mode == "system":
        needed.add("ranking")
        if ranking is not None and ranking.uses_dense:
            needed.add("encoder")
        if ranking is not None and ranking.uses_reranker:
            needed.add("reranker")
    if rerank:
        needed.add("reranker")
    return needed


class Results(list):
    """The ranked hits of one query (recall.milvus.search.Hit: id, score, text), best first; `timings_ms` holds
    the milliseconds of each step of the search that found them."""

    def __init__(self, hits=(), timings_ms=None):
        super().__init__(hits)
        self.timings_ms = dict(timings_ms or {})


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
        from search.learn import check_ranking_file, load_ranking_model

        path = os.path.join(directory or "", RANKING_FILE)
        if not directory or not os.path.isfile(path):
            raise ConfigError(
                f"no fitted ranking at {directory}: fit one with python -m search.fit (the pipeline does, into "
                "<output>/export/ranking), or choose a leg with --mode dense|bm25|hybrid"
            )
        try:
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
            if spec.get("format") != FORMAT:
                raise ValueError(f"format {spec.get('format')!r}, expected {FORMAT!r}")
            # each file checked against its sha1 in ranking.json before it is read (a damaged one aborts LightGBM)
            checksums = spec.get("sha1")
            stats = LexicalStats.load(check_ranking_file(directory, spec["stats_file"], checksums, path))
            lexical, neural = (
                load_ranking_model(directory, spec[part], checksums, known, path) if spec[part] else None
                for part, known in (("lexical", FEATURES), ("neural", NEURAL_FEATURES))
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelMismatchError(  # noqa: B904
                f"{path}: not a ranking written by search.fit of this version ({type(e).__name__}: {e}); refit it "
                "(python -m search.fit)"
            )
        ranking = cls(directory, spec, stats, lexical, neural)
        for key, given, flag in (
            ("recall_model", model_dir, "--model_dir"),
            ("reranker", reranker_dir, "--reranker_dir"),
        ):
            fitted = spec["fitted_with"].get(key)
            if given and ranking.needs(key) and fitted != weights_fingerprint(given):
                raise ModelMismatchError(
                    f"{path} was fitted with another {key.replace('_', ' ')} than {flag} {given}: refit it "
                    "(python -m search.fit) or pass the models it was fitted with"
                )
        return ranking

    @property
    def chosen(self):
        """ "bm25" (BM25's order), "lexical" (the lexical model) or "neural" (the lexical model, then the neural one)."""
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
            raise ModelMismatchError(
                f"{os.path.join(self.directory, RANKING_FILE)} was fitted on another corpus "
                f"({self.stats.n_docs} documents, sha1 {self.stats.sha1[:12]}) than the collection at {where} "
                f"holds ({built.get('documents')} documents, sha1 "
                f"{str(built.get('sha1'))[:12]}): refit it (python -m search.fit) on that collection"
            )

    def lexical_matrix(self, query, hits):
        """[n, features] inputs of the lexical model (None when BM25's order was kept: nothing to compute)."""
        if self.lexical_model is None:
            return None
        bm25 = np.array([h.score for h in hits], dtype=np.float64)
        matrix = lexical_features(query, [h.text for h in hits], bm25, self.stats)
        return matrix[:, [FEATURES.index(name) for name in self.spec["lexical"]["features"]]]

    def explain(self, matrix, neural_inputs, rows):
        """For the hits at `rows`: {"model": "lexical" | "neural", "bias": b, "contributions": {feature: c}}, LightGBM's
        per-feature contributions (SHAP values) of the model whose score ranks them, so bias + sum(contributions)
        is the hit's score; None for BM25's own order (no model). neural_inputs: the neural model's matrix."""
        if self.neural_model is not None:
            model, names, inputs = self.neural_model, self.neural_features, neural_inputs
        elif self.lexical_model is not None:
            model, names, inputs = self.lexical_model, self.spec["lexical"]["features"], matrix
        else:
            return [None for _ in rows]
        contributions = model.predict(inputs[rows], pred_contrib=True, num_threads=1)
        return [
            {
                "model": "neural" if model is self.neural_model else "lexical",
                "bias": round(float(row[-1]), 6),
                "contributions": {name: round(float(value), 6) for name, value in zip(names, row[:-1])},
            }
            for row in np.atleast_2d(contributions)
        ]

    def lexical_scores(self, hits, matrix):
        """The lexical model's score of each hit (BM25's own score where no lexical model was kept)."""
        if self.lexical_model is None:
            return np.array([h.score for h in hits], dtype=np.float64)
        return self.lexical_model.predict(matrix, num_threads=1)


def neural_matrix(names, lexical_score, cosine=None, rerank_logit=None):
    """[n, len(names)] inputs of the neural model: the lexical score, the dense cosine, its 1-based rank among the
    candidates, its gap to the best candidate's cosine and the reranker's logit (a signal not computed: absent from
    names)."""
    columns = {"lexical_score": lexical_score}
    if cosine is not None:
        columns["cosine"] = cosine
        columns["cosine_rank"] = np.argsort(np.argsort(-cosine, kind="stable"), kind="stable") + 1.0
        columns["cosine_gap"] = cosine - (cosine.max() if len(cosine) else 0.0)
        # the two orders fused by reciprocal rank (a low-variance combination the trees can take as it is)
        lexical_rank = np.argsort(np.argsort(-np.asarray(lexical_score), kind="stable"), kind="stable") + 1.0
        columns["rank_fusion"] = 1.0 / (RRF_K + lexical_rank) + 1.0 / (RRF_K + columns["cosine_rank"])
    if rerank_logit is not None:
        columns["rerank_logit"] = rerank_logit
    return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in names])


def rerank_logits(reranker, query, texts):
    """The reranker's logit of each (query, text): its probability, back on the scale trees split well."""
    probs = np.clip(np.asarray(reranker.score(query, texts), dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(probs) - np.log1p(-probs)


class SearchSystem:
    """Recall and the learned ranking over one collection (mode "system"), or one recall leg ("dense", "bm25",
    "hybrid", optionally reranked). `timings` holds the seconds of the last call per step: encode, search (the
    BM25 leg with its stored vectors), features, rerank, rank (the models), total.

    SearchSystem.from_pipeline(directory) loads everything from a pipeline's output; close() (or a `with`
    block) releases Milvus. Errors are ns_common.errors exceptions: ConfigError (a missing piece: the message
    names the command that makes it), ModelMismatchError, MilvusUnavailableError, BadInputError (a query)."""

    def __init__(
        self,
        searcher,
        ranking,
        encoder=None,
        reranker=None,
        mode="system",
        rerank=False,
        load_encoder=None,
        allow_model_mismatch=None,
    ):
        """allow_model_mismatch: serve a collection whose vectors another model than encoder's computed (default: as
        the searcher was told; refused otherwise, ModelMismatchError)."""
        self._mode, self.rerank = mode, rerank
        needed = needed_components(mode, ranking, rerank)
        if mode == "system":
            if "bm25" not in searcher.modes:
                raise ConfigError(
                    f"the search system needs the BM25 field, which collection {searcher.config.collection} lacks: "
                    "rebuild it with milvus-lite 2.5 or Milvus >= 2.5, or use --mode dense"
                )
            if "encoder" in needed and encoder is None:
                raise ConfigError(
                    "the fitted ranking uses the dense cosine: give the recall model it was fitted with (--model_dir)"
                )
            if "reranker" in needed and reranker is None:
                raise ConfigError(
                    "the fitted ranking uses the reranker: give the reranker it was fitted with (--reranker_dir)"
                )
            ranking.check_corpus(searcher.info.meta, f"{searcher.config.uri} ({searcher.config.collection})")
        # the searcher's own encoder was checked when it opened the collection
        if encoder is not None and "encoder" in needed and encoder is not getattr(searcher, "encoder", None):
            allow = (
                getattr(searcher, "allow_model_mismatch", False)
                if allow_model_mismatch is None
                else allow_model_mismatch
            )
            check_model(searcher.info, searcher.config, encoder, allow)
        elif "reranker" in needed and reranker is None:
            raise ConfigError("rerank needs the reranker (--reranker_dir)")
        self.searcher, self.ranking, self.encoder, self.reranker = searcher, ranking, encoder, reranker
        self._load_encoder = load_encoder  # loads the recall model on the first encode() when no search needs it
        self._owns_searcher = False
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lexical-leg")
        self.timings = {}

    @classmethod
    def from_pipeline(
        cls,
        pipeline_dir,
        mode="system",
        uri=None,
        model_dir=None,
        reranker_dir=None,
        ranking_dir=None,
        device="cpu",
        collection=None,
        token=None,
        rerank=False,
        max_seq_length=64,
        cpu_threads=None,
    ):
        """The search system of what scripts/pipeline.py wrote into pipeline_dir (`make run`: output/pipeline/sample):
        the recall model <dir>/export/recall, the reranker <dir>/export/reranker, the fitted ranking
        <dir>/export/ranking, the Milvus Lite database <dir>/milvus/neural_search.db (or the --milvus_uri the run
        recorded in <dir>/settings.json); each can be given instead. Only what `mode` needs is loaded (see
        needed_components). A missing piece is a ConfigError naming it and the command that makes it."""
        from recall.milvus.config import is_lite_uri, load_config
        from recall.milvus.search import MilvusSearcher

        make = f"run the pipeline (make run, or python scripts/pipeline.py --output_dir {pipeline_dir})"
        if not os.path.isdir(pipeline_dir or ""):
            raise ConfigError(f"{pipeline_dir}: no pipeline output directory; {make}")
        model_dir = model_dir or os.path.join(pipeline_dir, "export", "recall")
        reranker_dir = reranker_dir or os.path.join(pipeline_dir, "export", "reranker")
        ranking_dir = ranking_dir or os.path.join(pipeline_dir, "export", "ranking")
        if uri is None:
            uri = os.path.join(pipeline_dir, "milvus", "neural_search.db")
            recorded = _read_settings(pipeline_dir).get("milvus_uri")
            if recorded and not is_lite_uri(recorded):  # the run used a Milvus server
                uri = recorded
        if is_lite_uri(uri) and not os.path.exists(uri):
            raise ConfigError(
                f"no Milvus Lite database at {uri}: {make}, or insert the corpus (python -m recall.milvus.insert)"
            )
        ranking = None
        if mode == "system":
            if not os.path.isfile(os.path.join(ranking_dir, RANKING_FILE)):
                raise ConfigError(
                    f"no fitted ranking at {ranking_dir}: {make}, or fit one (python -m search.fit --output_dir "
                    f'{ranking_dir} ...); or choose a recall leg: mode="dense", "bm25" or "hybrid"'
                )
            ranking = Ranking.load(
                ranking_dir,
                model_dir if os.path.isdir(model_dir) else None,
                reranker_dir if os.path.isdir(reranker_dir) else None,
            )
        needed = needed_components(mode, ranking, rerank)
        for part, directory, stage in (("encoder", model_dir, "export"), ("reranker", reranker_dir, "export_reranker")):
            if part in needed and not os.path.isdir(directory):
                what = "recall model" if part == "encoder" else "reranker"
                raise ConfigError(
                    f"no {what} at {directory}: {make} (its stage {stage} writes it), or pass "
                    f"{'model_dir' if part == 'encoder' else 'reranker_dir'}="
                )

        def load_encoder():
            from recall.milvus.model import TextEncoder, TimedEncoder

            if not os.path.isdir(model_dir):
                raise ConfigError(
                    f"no recall model at {model_dir}: {make} (its stage export writes it), or pass model_dir="
                )
            return TimedEncoder(
                TextEncoder(model_dir=model_dir, max_seq_length=max_seq_length, device=device, cpu_threads=cpu_threads)
            )

        encoder = load_encoder() if "encoder" in needed else None
        reranker = None
        if "reranker" in needed:
            from ernie_matching.reranker import Reranker

            reranker = Reranker.from_dir(
                reranker_dir, device=device, max_seq_length=max_seq_length, cpu_threads=cpu_threads
            )
        searcher = MilvusSearcher(load_config(uri=uri, collection=collection, token=token), encoder)
        try:
            system = cls(searcher, ranking, encoder, reranker, mode=mode, rerank=rerank, load_encoder=load_encoder)
        except BaseException:
            searcher.close()
            raise
        system._owns_searcher = True
        return system

    @property
    def mode(self):
        return self._mode

    def encode(self, texts):
        """The recall model's vectors of texts (a string or a list): float32 [n, dim], L2-normalised. ConfigError
        when there is no recall model."""
        if isinstance(texts, str):
            texts = [texts]
        if self.encoder is None:
            if self._load_encoder is None:
                raise ConfigError("no recall model: this search system was built without one (give model_dir)")
            self.encoder = self._load_encoder()
        return self.encoder.encode(list(texts))

    def search(self, query, top_k=10, filter=None, explain=True):  # noqa: A002 - Milvus' own name
        """The top_k hits of one query, best first, as Results (a list of Hit, with `timings_ms`). filter: a Milvus
        boolean expression over the paper fields (`category == "工学" and year >= 2015`): every leg and the ranking
        see only the papers it holds for. Each hit carries the query keywords it matches (`matched`) and, when a
        learned model ranks, each feature's contribution to its score (`why`; explain=False skips it)."""
        if not isinstance(query, str):
            raise SearchError(f"the query is {type(query).__name__}, not text (str)")
        hits = self.search_batch([query], top_k, filter=filter, explain=explain)[0]
        return Results(hits, {step: round(seconds * 1000, 2) for step, seconds in self.timings.items()})

    def more_like_this(self, doc_id, top_k=10, filter=None):  # noqa: A002 - Milvus' own name
        """Papers like stored paper doc_id (itself left out), by its stored vector and its title
        (MilvusSearcher.more_like_this), as Results; `matched`: the paper's keywords (else its title's words) they
        share."""
        start = time.perf_counter()
        source = self.searcher.get_records([doc_id], with_vectors=True).get(doc_id)
        hits = self.searcher.more_like_this(doc_id, top_k, filter, source)  # a SearchError for an unknown id
        annotate(source_keywords(source), hits)
        self.timings = {"search": time.perf_counter() - start, "total": time.perf_counter() - start}
        return Results(hits, {step: round(seconds * 1000, 2) for step, seconds in self.timings.items()})

    def close(self):
        """Stops the worker thread; closes the Milvus connection when from_pipeline opened it."""
        self.pool.shutdown(wait=True)
        if self._owns_searcher:
            self._owns_searcher = False
            self.searcher.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def search_batch(self, queries, top_k=10, filter=None, explain=False):  # noqa: A002 - Milvus' own name
        """Ranked hits per query; a hit's score is the ranking's (the model's score, or BM25's). filter and explain:
        as in search()."""
        expression = check_filter(filter)
        if self._mode != "system":
            results = self._search_leg(queries, top_k, expression)
            return [annotate(query, hits) for query, hits in zip(queries, results)]
        start = time.perf_counter()
        top_k = check_top_k(top_k)
        if not 1 <= top_k <= CANDIDATES:
            raise SearchError(
                f"the search system ranks BM25's top {CANDIDATES} a query: top_k must be between 1 and {CANDIDATES}, got {top_k}"
            )
        queries = self.searcher.check_request(queries, top_k, "bm25")
        uses_dense = self.ranking.uses_dense
        # the lexical leg needs no query vector: it runs in a second thread while the queries are encoded
        lexical = self.pool.submit(
            self.searcher.bm25_with_vectors, queries, CANDIDATES, with_vectors=uses_dense, filter=expression
        )
        vectors = self.encoder.encode(queries) if uses_dense else None
        encoded = time.perf_counter()
        legs = lexical.result()
        searched = time.perf_counter()
        results, steps = [], {"features": 0.0, "rerank": 0.0, "rank": 0.0}
        for i, (query, found) in enumerate(zip(queries, legs)):
            hits = [hit for hit, _ in found]
            vector = None if vectors is None else vectors[i]
            results.append(
                annotate(query, self._rank(query, hits, found, vector, steps, top_k, explain)) if hits else []
            )
        total = time.perf_counter() - start
        self.timings = {"encode": encoded - start, "search": searched - encoded, **steps, "total": total}
        return results

    def _rank(self, query, hits, found, query_vector, steps, top_k, explain):
        """The top_k of the candidates by the ranking's score (with `why` when explain)."""
        t = time.perf_counter()
        matrix = self.ranking.lexical_matrix(query, hits)
        steps["features"] += time.perf_counter() - t
        t = time.perf_counter()
        scores = self.ranking.lexical_scores(hits, matrix)
        steps["rank"] += time.perf_counter() - t
        neural_inputs = None
        if self.ranking.neural_model is not None:
            cosine = (
                np.array([float(np.dot(stored, query_vector)) for _, stored in found])
                if query_vector is not None
                else None
            )
            t = time.perf_counter()
            logits = rerank_logits(self.reranker, query, [h.text for h in hits]) if self.ranking.uses_reranker else None
            steps["rerank"] += time.perf_counter() - t
            t = time.perf_counter()
            neural_inputs = neural_matrix(self.ranking.neural_features, scores, cosine, logits)
            scores = self.ranking.neural_model.predict(neural_inputs, num_threads=1)
            steps["rank"] += time.perf_counter() - t
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))[:top_k]  # ties keep BM25's order
        t = time.perf_counter()
        why = self.ranking.explain(matrix, neural_inputs, order) if explain else [None] * len(order)
        steps["explain"] = steps.get("explain", 0.0) + time.perf_counter() - t
        return [Hit(hits[i].id, float(scores[i]), hits[i].text, hits[i].fields, why=w) for i, w in zip(order, why)]

    def _search_leg(self, queries, top_k, expression=""):
        """One recall leg of Milvus (its hits and scores), reranked when asked (the reranker's probability is then
        the score); timings: encode, search, rerank, total."""
        start = time.perf_counter()
        seconds_before = getattr(self.encoder, "seconds", 0.0)
        found = self.searcher.search_batch(
            queries, max(top_k, CANDIDATES) if self.rerank else top_k, self._mode, filter=expression
        )
        searched = time.perf_counter()
        encode = getattr(self.encoder, "seconds", 0.0) - seconds_before
        results = found
        if self.rerank:
            results = [
                [
                    Hit(c["id"], c["rerank_score"], c["text"], c.get("fields", {}))
                    for c in self.reranker.rerank(query, [h.to_dict() for h in hits], top_k)
                ]
                for query, hits in zip(queries, found)
            ]
        done = time.perf_counter()
        self.timings = {
            "encode": encode,
            "search": searched - start - encode,
            "rerank": done - searched,
            "total": done - start,
        }
        return results


def source_keywords(record):
    """What "more like this" highlights, from the source paper's record (MilvusSearcher.get_records): its own keywords
    as a query, else its title (one "word" in Chinese: search.highlight matches it by its jieba words)."""
    keywords = [w for k in record["fields"].get("keywords", ()) for w in k.split()]
    return " ".join(keywords) if keywords else record["text"]


def _read_settings(pipeline_dir):
    """The settings a pipeline run recorded (settings.json), {} when absent or unreadable."""
    try:
        with open(os.path.join(pipeline_dir, "settings.json"), encoding="utf-8") as f:
            settings = json.load(f)
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}
