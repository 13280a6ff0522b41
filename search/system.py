"""SearchSystem, the one way a query runs (the query command, the web service and the Python API all call it), and
the default search path ("the system"): recall, then a learned ranking (the fine-ranking step, 精排).

    candidates  BM25's top CANDIDATES in Milvus (character uni+bigrams: the keyword-search bar), with their
                stored vectors in the same reply when a dense feature is used
    lexical     LightGBM LambdaMART over search.features (how the title covers the query's keywords, BM25 under
                other tokenisations, the BM25 score and rank), trained on every training query
    neural      where it earned its place: a second LambdaMART over the lexical score, the dense cosine (and its
                rank among the candidates) and the ERNIE-Gram reranker's logit, trained only on queries the
                neural models never saw
    fallback    BM25's own order, when no learned ranking beat it by a standard error in cross-validation

search/fit.py chooses all of it by k-fold cross-validation over the training queries (never dev) and writes the
ranking directory (ranking.json, the LightGBM models in their text format, the lexical statistics); SearchSystem
loads it. In one line, from what `make run` (scripts/pipeline.py) built:

    from search import SearchSystem
    with SearchSystem.from_pipeline("output/pipeline/sample") as system:
        results = system.search("语言 文化 差异", top_k=10)      # Results: Hits (id, text, score), .timings_ms
        legs = system.search(["语言 文化 差异", "风险"], mode="bm25")  # one Results per query (mode: a leg)
        similar = system.more_like_this(18, top_k=5)                # papers like paper 18
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ns_common.errors import BadInputError, ConfigError, MilvusUnavailableError, NeuralSearchError
from ns_common.utils import logger
from recall.milvus.search import MODES, Hit, SearchError, check_filter, check_model, check_top_k
from search.highlight import annotate

# the fitted ranking (search/ranking.py), also importable from here as before (search.fit, the benchmarks, tests)
from search.ranking import (  # noqa: F401
    DENSE_FEATURES,
    FORMAT,
    NEURAL_FEATURES,
    RANKING_FILE,
    RRF_K,
    Ranking,
    default_ranking_dir,
    neural_matrix,
    rerank_logits,
    united_pool,
)

CANDIDATES = 50  # BM25 hits a query's ranking reorders
FACETS_MAX_AGE_S = 30  # a living index's facets are counted again after this long: papers added elsewhere show up
MAX_ID = 2**63 - 1  # Milvus' INT64 primary key


def needed_components(mode, ranking=None, rerank=False) -> set:
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


class SystemClosedError(NeuralSearchError):
    """A SearchSystem used after close()."""


class UnknownPaperError(SearchError):
    """more_like_this of an id the collection does not hold (the web service answers it with a 404)."""

    def __init__(self, paper_id, collection, uri):
        super().__init__(f"no document with id {paper_id} in collection {collection} at {uri}")
        self.paper_id, self.collection = paper_id, collection


class SearchSystem:
    """The one way a query runs: recall in Milvus, then the learned ranking (mode "system"), or one recall leg
    ("dense", "bm25", "hybrid", optionally reranked by the ERNIE-Gram reranker); a stored paper's neighbours
    (more_like_this); the recall model's vectors (encode). search/query.py and the web service (search/web/) only
    translate their input into these calls and the Results into their output.

    SearchSystem.from_pipeline(directory) loads everything from a pipeline's output, SearchSystem.open(config, ...)
    from given paths; close() (or a `with` block) releases Milvus. Errors are ns_common.errors exceptions:
    ConfigError (a missing piece: the message names the command that makes it), ModelMismatchError,
    MilvusUnavailableError, BadInputError (a query, an id, a filter; SearchError is one), SystemClosedError.

    Safe to share between threads: calls take turns on one lock (a Paddle Inference predictor may not run in two
    threads at once), so each answer is the one a sequential call gives; a call's Results.timings_ms says how long it
    waited ("wait"). Inside a call, the two legs' Milvus requests may run side by side (_system; the gRPC client is
    safe to share)."""

    def __init__(
        self,
        searcher,
        ranking=None,
        encoder=None,
        reranker=None,
        mode="system",
        rerank=False,
        load_encoder=None,
        allow_model_mismatch=None,
        rerank_candidates=CANDIDATES,
    ):
        """mode / rerank: what search() does when a call does not say (the parts it needs must be given; other
        modes are served when their parts are there too). allow_model_mismatch: serve a collection whose vectors
        another model than encoder's computed (default: as the searcher was told; refused otherwise,
        ModelMismatchError). rerank_candidates: the recall hits handed to the reranker (at least top_k)."""
        needed = needed_components(mode, ranking, rerank)
        if ranking is not None:
            if "bm25" not in searcher.modes:
                raise ConfigError(
                    f"the search system needs the BM25 field, which collection {searcher.config.collection} lacks: "
                    "rebuild it with milvus-lite 2.5 or Milvus >= 2.5, or use --mode dense"
                )
            if ranking.uses_dense and encoder is None:
                raise ConfigError(
                    "the fitted ranking uses the dense cosine: give the recall model it was fitted with (--model_dir)"
                )
            if ranking.uses_reranker and reranker is None:
                raise ConfigError(
                    "the fitted ranking uses the reranker: give the reranker it was fitted with (--reranker_dir)"
                )
            ranking.check_corpus(searcher.info.meta, f"{searcher.config.uri} ({searcher.config.collection})")
            if getattr(searcher, "keyed_by_paper", False):
                stale = ranking.stale_statistics(store_count(searcher))
                if stale:
                    logger.warning(stale)
        elif "ranking" in needed:
            raise ConfigError("mode system needs the fitted ranking (search/fit.py's output, --ranking_dir)")
        if "reranker" in needed and reranker is None:
            raise ConfigError("rerank needs the reranker (--reranker_dir)")
        if "encoder" in needed and encoder is None:
            raise ConfigError(f"mode {mode} needs the recall model to embed the query (model_dir)")
        if encoder is not None and encoder is not getattr(searcher, "encoder", None):
            # the searcher's own encoder was checked when it opened the collection
            allow = (
                getattr(searcher, "allow_model_mismatch", False)
                if allow_model_mismatch is None
                else allow_model_mismatch
            )
            check_model(searcher.info, searcher.config, encoder, allow)
        self.searcher, self.ranking, self.encoder, self.reranker = searcher, ranking, encoder, reranker
        self._mode, self.rerank, self.rerank_candidates = mode, rerank, rerank_candidates
        self._load_encoder = load_encoder  # loads the recall model on the first encode() when no search needs it
        self._owns_searcher = False
        self._lock = threading.Lock()
        self._closed = False
        self._legs = None  # the thread that sends BM25's request beside the dense leg's (_leg_pool)
        self._facets = None  # counted over the collection's rows when first asked, again FACETS_MAX_AGE_S later
        self._facets_at = 0.0
        self.timings = {}  # the seconds of each step of the last call (Results.timings_ms: the same, per call)

    # ------------------------------------------------------------------ loading: the one loader of the models

    @classmethod
    def open(
        cls,
        config,
        *,
        mode="system",
        rerank=False,
        ranking_dir=None,
        ranking=None,
        model=None,
        reranker_dir=None,
        inference=None,
        allow_model_mismatch=False,
        everything=False,
        rerank_candidates=CANDIDATES,
    ) -> "SearchSystem":
        """The search system over the collection of `config` (recall.milvus.config.load_config): loads the fitted
        ranking of ranking_dir, the recall model (model: TextEncoder's keyword arguments: model_dir or params_path
        with model_name_or_path, max_seq_length, device, ...) and the reranker of reranker_dir (inference:
        Reranker.from_dir's keyword arguments), each only when `mode` / `rerank` need it (needed_components), then
        Milvus (ranking: one already loaded, instead of ranking_dir). everything=True (the web service): whatever is
        given is loaded, so that every mode it allows can be served per call; mode is then the default, "system"
        when a ranking is served, else "dense"."""
        from recall.milvus.model import TextEncoder, TimedEncoder
        from recall.milvus.search import MilvusSearcher

        model = dict(model or {})
        model_dir = model.get("model_dir")
        if ranking is None and (mode == "system" or (everything and ranking_dir)):
            ranking = Ranking.load(ranking_dir, model_dir, reranker_dir)
        needed = needed_components(mode if ranking or not everything else "dense", ranking, rerank)
        if everything:
            needed |= {"encoder"} if model_dir or model.get("params_path") else set()
            needed |= {"reranker"} if reranker_dir else set()

        def load_encoder():
            if not (model_dir or model.get("params_path")):
                raise ConfigError("no recall model: this search system was built without one (give model_dir)")
            encoder = TimedEncoder(TextEncoder(**model))
            encoder.dim  # noqa: B018 - a model that gives no vectors (the reranker's export) is a one-line error here
            return encoder

        encoder = load_encoder() if "encoder" in needed else None
        reranker = None
        if "reranker" in needed:  # before Milvus: a wrong model is a one-line error (Reranker checks its output)
            from ernie_matching.reranker import Reranker

            reranker = Reranker.from_dir(reranker_dir, **(inference or {}))
        searcher = MilvusSearcher(config, encoder, allow_model_mismatch=allow_model_mismatch)
        try:
            if everything and ranking is not None and "bm25" not in searcher.modes:
                logger.info(
                    f"collection {config.collection} has no BM25 field: modes {', '.join(searcher.modes)} only, "
                    "no search system"
                )
                ranking = None
            if everything:
                mode = "system" if ranking is not None else "dense" if encoder is not None else "bm25"
            system = cls(
                searcher,
                ranking,
                encoder,
                reranker,
                mode=mode,
                rerank=rerank,
                load_encoder=load_encoder if model_dir or model.get("params_path") else None,
                rerank_candidates=rerank_candidates,
            )
        except BaseException:
            searcher.close()
            raise
        system._owns_searcher = True
        return system

    @classmethod
    def from_args(cls, args, mode="system", rerank=False, everything=False) -> "SearchSystem":
        """open() with a search command's flags (recall.milvus.config.add_config_args, recall.milvus.model.add_model_args,
        --ranking_dir, --reranker_dir, --allow_model_mismatch, --rerank_candidates where the command has them)."""
        from recall.milvus.config import load_config

        model = None
        if args.model_dir or args.params_path:
            model = dict(
                model_dir=args.model_dir,
                model_name_or_path=args.model_name_or_path,
                params_path=args.params_path,
                output_emb_size=args.output_emb_size,
                max_seq_length=args.max_seq_length,
                batch_size=args.batch_size,
                device=args.device,
                cpu_threads=args.cpu_threads,
                enable_mkldnn=args.enable_mkldnn,
                precision=getattr(args, "precision", "fp32"),
            )
        inference = dict(
            device=args.device,
            max_seq_length=args.max_seq_length,
            cpu_threads=args.cpu_threads,
            enable_mkldnn=args.enable_mkldnn,
            precision=getattr(args, "precision", "fp32"),
        )
        return cls.open(
            load_config(args),
            mode=mode,
            rerank=rerank,
            ranking_dir=args.ranking_dir,
            model=model,
            reranker_dir=args.reranker_dir,
            inference=inference,
            allow_model_mismatch=getattr(args, "allow_model_mismatch", False),
            everything=everything,
            rerank_candidates=getattr(args, "rerank_candidates", CANDIDATES),
        )

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
    ) -> "SearchSystem":
        """The search system of what scripts/pipeline.py wrote into pipeline_dir (`make run`: output/pipeline/sample):
        the recall model <dir>/export/recall, the reranker <dir>/export/reranker, the fitted ranking
        <dir>/export/ranking, the Milvus Lite database <dir>/milvus/neural_search.db (or the --milvus_uri the run
        recorded in <dir>/settings.json); each can be given instead. Only what `mode` needs is loaded (see
        needed_components). A missing piece is a ConfigError naming it and the command that makes it."""
        from recall.milvus.config import is_lite_uri, load_config

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
        found_model = model_dir if os.path.isdir(model_dir) else None
        system = cls.open(
            load_config(uri=uri, collection=collection, token=token),
            mode=mode,
            rerank=rerank,
            ranking=ranking,
            model=dict(model_dir=found_model, max_seq_length=max_seq_length, device=device, cpu_threads=cpu_threads),
            reranker_dir=reranker_dir,
            inference=dict(device=device, max_seq_length=max_seq_length, cpu_threads=cpu_threads),
        )
        if found_model is None:  # encode() names the directory and the command that makes it

            def no_model():
                raise ConfigError(
                    f"no recall model at {model_dir}: {make} (its stage export writes it), or pass model_dir="
                )

            system._load_encoder = no_model
        return system

    # ------------------------------------------------------------------ what the system serves

    @property
    def mode(self) -> str:
        """The mode a search runs in when it does not name one."""
        return self._mode

    @property
    def modes(self) -> list:
        """The modes this system can serve: "system" when a ranking is loaded, and the collection's legs (dense and
        hybrid when the recall model is loaded)."""
        legs = [mode for mode in self.searcher.modes if mode == "bm25" or self.encoder is not None]
        return (["system"] if self.ranking is not None else []) + legs

    @property
    def keyed_by_paper(self) -> bool:
        """Whether the collection names papers by their own ids (a living index: papers added, changed and deleted by
        id; Hit.id is the paper's id), else by corpus line (Hit.id an int)."""
        return bool(getattr(self.searcher, "keyed_by_paper", False))

    @property
    def dim(self) -> int:
        """The dimension of the collection's vectors."""
        return self.searcher.info.dim

    @property
    def collection(self) -> str:
        """The Milvus collection searched."""
        return self.searcher.config.collection

    @property
    def uri(self) -> str:
        """Where it is: a Milvus Lite file or a server's URI."""
        return self.searcher.config.uri

    @property
    def facets(self) -> dict:
        """What the papers the collection holds offer to filter on: {"category": {value: papers}, "discipline":
        {value: papers}, "year": [first, last] or None}, counted over its rows (MilvusSearcher.facets: not the
        description written at insert, which an upsert of other fields leaves stale) once, when first asked; empty
        values for a collection of titles only."""
        # a collection keyed by paper ids changes while it is served (updates in other processes): counted again
        # once they are FACETS_MAX_AGE_S old (a pass over the rows: about a second at 100k papers)
        expired = self.keyed_by_paper and time.monotonic() - self._facets_at > FACETS_MAX_AGE_S
        if self._facets is None or expired:
            from recall.milvus.data import FACET_FIELDS

            counted = self._locked(lambda steps: self.searcher.facets())[0]
            facets = {name: dict(counted.get(name) or {}) for name in FACET_FIELDS}
            years = counted.get("year")
            facets["year"] = [int(years[0]), int(years[1])] if years else None
            self._facets, self._facets_at = facets, time.monotonic()
        return self._facets

    def documents(self) -> int:
        """A live count of the collection's papers (a MilvusUnavailableError when Milvus fails)."""
        from recall.milvus import store

        def count(timings):
            with store.milvus_errors(self.searcher.config, "counting documents"):
                return store.count_entities(self.searcher.client, self.searcher.config)

        return self._locked(count)[0]

    def warm_up(self) -> None:
        """One search in each mode served: the first BM25 search loads Milvus' jieba dictionary (~1.5 s), the first
        model call its kernels; and the recall model's kernels for every query length (TextEncoder.warm_up): pay it
        now, not on a user's query."""
        if self.encoder is not None and hasattr(self.encoder, "warm_up"):
            self.encoder.warm_up()
        for mode in self.modes:
            if mode in ("dense", "hybrid") and self.encoder is None:
                continue
            self.search("预热", mode=mode, top_k=1, explain=False)

    # ------------------------------------------------------------------ the calls

    def encode(self, texts, *, timings=False) -> np.ndarray | tuple:
        """The recall model's vectors of texts (a string or a list of strings): float32 [n, dim], L2-normalised;
        with timings=True (vectors, {"wait": ms, "encode": ms}). ConfigError when there is no recall model,
        BadInputError when texts are not text."""
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(texts, (bytes, dict)) or not isinstance(texts, (list, tuple)):
            raise BadInputError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
        not_text = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if not_text:
            raise BadInputError(f"texts[{not_text[0]}] is {type(texts[not_text[0]]).__name__}, not text (str)")

        def run(steps):
            if self.encoder is None:
                if self._load_encoder is None:
                    raise ConfigError("no recall model: this search system was built without one (give model_dir)")
                self.encoder = self._load_encoder()
            start = time.perf_counter()
            vectors = self.encoder.encode(list(texts))
            steps["encode"] = time.perf_counter() - start
            return vectors

        vectors, steps = self._locked(run)
        return (vectors, _ms({"wait": steps["wait"], "encode": steps["encode"]})) if timings else vectors

    def search(  # noqa: A002 - filter: Milvus' own name
        self, queries, *, mode=None, rerank=None, filter=None, top_k=10, explain=None, candidates=None
    ) -> "Results | list[Results]":
        """The top_k hits of one query (a str: Results) or of each of a list of queries (a list of Results), best
        first; Results is a list of Hit (id, score, text, fields, matched, why) with `timings_ms`.

        mode: "system" (BM25's top 50 reordered by the learned ranking), "dense", "bm25" or "hybrid" (default: the
        system's mode). rerank: rerank a leg's hits with the reranker (the reranker's probability is then the score;
        each hit keeps recall_score and recall_rank); candidates: the recall hits it reranks (default:
        rerank_candidates; at least top_k). filter: a Milvus boolean expression over the paper fields (`category ==
        "工学" and year >= 2015`): every leg and the ranking see only the papers it holds for. Each hit carries the
        query keywords it matches (`matched`) and, when a learned model ranks and explain (default: for one query),
        each feature's contribution to its score (`why`)."""
        one = isinstance(queries, str)
        mode = self._mode if mode is None else mode
        rerank = self.rerank if rerank is None else rerank
        explain = one if explain is None else explain
        queries, top_k, expression = self._check(queries, mode, rerank, filter, top_k)

        def run(steps):
            if mode == "system":
                return self._system(queries, top_k, expression, explain, steps)
            n = max(top_k, candidates or self.rerank_candidates) if rerank else top_k
            return self._leg(queries, mode, n, top_k if rerank else None, expression, steps)

        results, steps = self._locked(run)
        timings = _ms(steps)
        results = [Results(hits, timings) for hits in results]
        return results[0] if one else results

    def more_like_this(self, paper_id, *, top_k=10, filter=None) -> "Results":  # noqa: A002 - Milvus' own name
        """Papers like stored paper paper_id (its own id in a collection keyed by paper ids; else an int, or a string of
        digits: the paper's line in the corpus), itself
        left out, by its stored vector and its title (MilvusSearcher.more_like_this), as Results with `source`, the
        paper's record; `matched`: the paper's keywords (else its title's words) they share. An unknown id is a
        SearchError."""
        paper_id, top_k, expression = self._paper_id(paper_id), check_top_k(top_k), check_filter(filter)

        def run(steps):
            start = time.perf_counter()
            known = isinstance(paper_id, str) or 0 <= paper_id <= MAX_ID
            source = self.searcher.get_records([paper_id], with_vectors=True).get(paper_id) if known else None
            if source is None:
                raise UnknownPaperError(paper_id, self.searcher.config.collection, self.searcher.config.uri)
            hits = self.searcher.more_like_this(paper_id, top_k, expression, source)
            annotate(source_keywords(source), hits)
            steps["search"] = time.perf_counter() - start
            return source, hits

        (source, hits), steps = self._locked(run)
        results = Results(hits, _ms(steps))
        results.source = {"id": paper_id, "text": source["text"], "fields": source["fields"]}
        results.mode = "hybrid" if "hybrid" in self.searcher.modes else "dense"
        return results

    def paper(self, paper_id) -> dict:
        """A stored paper's record: {"id", "text" (its title), "fields", "abstract"} (what a page shows when a card is
        opened); an unknown id is an UnknownPaperError (a SearchError)."""
        paper_id = self._paper_id(paper_id)

        def run(steps):
            known = isinstance(paper_id, str) or 0 <= paper_id <= MAX_ID
            record = self.searcher.get_records([paper_id]).get(paper_id) if known else None
            if record is None:
                raise UnknownPaperError(paper_id, self.searcher.config.collection, self.searcher.config.uri)
            return {"id": paper_id, **record}

        return self._locked(run)[0]

    def delete(self, paper_ids) -> list:
        """Deletes stored papers by their own ids (a list of texts) from a collection keyed by paper ids (a ConfigError
        for one keyed by corpus lines); returns the ids that were there. Every later call, here and in any process
        searching the collection, no longer finds them; the facets are counted again."""
        if isinstance(paper_ids, (str, bytes)) or not isinstance(paper_ids, (list, tuple)):
            raise BadInputError(f"paper_ids must be a list of paper ids, got {type(paper_ids).__name__}")
        ids = [self._paper_id(paper_id) for paper_id in paper_ids]

        def run(steps):
            deleted = self.searcher.delete(ids)
            self._facets = None
            return deleted

        return self._locked(run)[0]

    def _paper_id(self, paper_id):
        """A paper id as the collection names papers: its own id (a non-empty text; an int is taken as its text) where
        the collection is keyed by paper ids, else its corpus line (check_paper_id). Anything else: a SearchError."""
        if not getattr(self.searcher, "keyed_by_paper", False):
            return check_paper_id(paper_id)
        if isinstance(paper_id, (int, np.integer)) and not isinstance(paper_id, bool):
            return str(int(paper_id))
        if not isinstance(paper_id, str) or not paper_id.strip():
            raise SearchError(f"a paper id is the paper's own id (text), got {type(paper_id).__name__} {paper_id!r}")
        return paper_id.strip()

    def close(self) -> None:
        """Closes the Milvus connection when open() / from_pipeline opened it. Later calls are a SystemClosedError."""
        with self._lock:
            self._closed = True
            if self._legs is not None:
                self._legs.shutdown()
            if self._owns_searcher:
                self._owns_searcher = False
                self.searcher.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ inside: one check, one lock, the paths

    def _check(self, queries, mode, rerank, filter, top_k):  # noqa: A002
        """The one check of a search's arguments: (the queries whitespace-normalised, top_k, the filter)."""
        if mode not in ("system",) + MODES:
            raise SearchError(f"unknown mode {mode!r}: expected one of system, {', '.join(MODES)}")
        if mode not in self.modes:
            if mode in ("system", "bm25", "hybrid") and "bm25" not in self.searcher.modes:
                why = "the collection has no BM25 field"
            elif mode == "system":
                why = "no fitted ranking is loaded (--ranking_dir)"
            else:
                why = "no recall model is loaded to embed the query (--model_dir or --params_path)"
            raise SearchError(f"mode {mode} is not available: {why}; available: {', '.join(self.modes)}")
        if rerank and self.reranker is None:
            raise SearchError("rerank is on but no reranker is loaded: start the service with --reranker_dir")
        if mode == "system" and rerank:
            raise SearchError(
                "mode system already ranks with the neural signals its fit kept: rerank goes with dense, bm25 or hybrid"
            )
        if not isinstance(queries, (str, list, tuple)):
            raise SearchError(f"the query is {type(queries).__name__}, not text (str) or a list of texts")
        leg = "bm25" if mode == "system" else mode  # the system's candidates are BM25's
        cleaned, top_k = self.searcher.check_request(
            [queries] if isinstance(queries, str) else queries, top_k, leg, True
        )
        if mode == "system" and top_k > CANDIDATES:
            raise SearchError(
                f"the search system ranks BM25's top {CANDIDATES} a query: top_k must be between 1 and {CANDIDATES}, got {top_k}"
            )
        return cleaned, top_k, check_filter(filter)

    def _locked(self, run):
        """run(steps) alone (one call at a time); -> (its result, steps: the seconds of each step, with "wait" and
        "total"). A raw pymilvus error becomes a MilvusUnavailableError."""
        from pymilvus.exceptions import MilvusException

        queued = time.perf_counter()
        with self._lock:
            if self._closed:
                raise SystemClosedError("this SearchSystem is closed: open a new one (SearchSystem.from_pipeline)")
            steps = {"wait": time.perf_counter() - queued}
            try:
                result = run(steps)
            except MilvusException as e:
                raise MilvusUnavailableError(f"Milvus at {self.searcher.config.uri}: {e}") from None
            steps["total"] = time.perf_counter() - queued
            self.timings = {step: seconds for step, seconds in steps.items() if step != "wait"}
        return result, steps

    def _leg_pool(self) -> ThreadPoolExecutor:
        """One thread for BM25's request while the dense leg's runs (calls take turns on the lock: one is enough)."""
        if self._legs is None:
            self._legs = ThreadPoolExecutor(1, thread_name_prefix="bm25-leg")
        return self._legs

    def _system(self, queries, top_k, expression, explain, steps):
        """Ranked hits per query; a hit's score is the ranking's (the model's score, or BM25's). The candidates: BM25's
        top CANDIDATES, united with the dense leg's top k where the fit chose so (Ranking.dense_candidates)."""
        start = time.perf_counter()
        uses_dense, united = self.ranking.uses_dense, self.ranking.dense_candidates
        vectors = self.encoder.encode(queries) if uses_dense else None
        encoded = time.perf_counter()

        def bm25():
            return self.searcher.bm25_with_vectors(queries, CANDIDATES, with_vectors=uses_dense, filter=expression)

        if united:
            # the query encoded first, then both legs' requests at once: Milvus serves them side by side while this
            # process only waits on them. (BM25's leg beside the encoder overlapped nothing: Paddle Inference holds
            # the GIL while it runs, and the leg's Milvus work took CPU from the encoder's two threads.)
            pending = self._leg_pool().submit(bm25)
            try:
                dense = self.searcher.search_vectors(vectors, united, filter=expression, with_vectors=True)
            except BaseException:
                pending.exception()  # no request of this call outlives it
                raise
            legs = [united_pool(found, extra) for found, extra in zip(pending.result(), dense)]
        else:
            legs = bm25()
        featured = time.perf_counter()
        matrices = [self.ranking.lexical_matrix(q, [hit for hit, _ in found]) for q, found in zip(queries, legs)]
        steps["features"] = time.perf_counter() - featured
        if uses_dense:
            steps["encode"] = encoded - start
        steps["search"] = featured - encoded
        steps["rank"] = 0.0
        if self.ranking.uses_reranker:
            steps["rerank"] = 0.0
        if explain:
            steps["explain"] = 0.0
        results = []
        for i, (query, found, matrix) in enumerate(zip(queries, legs, matrices)):
            vector = None if vectors is None else vectors[i]
            results.append(
                annotate(query, self._rank(query, found, matrix, vector, steps, top_k, explain)) if found else []
            )
        return results

    def _rank(self, query, found, matrix, query_vector, steps, top_k, explain):
        """The top_k of the candidates [(Hit, stored vector), ...] by the ranking's score (with `why` when explain);
        matrix: their lexical_matrix."""
        hits = [hit for hit, _ in found]
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
            if self.ranking.uses_reranker:
                steps["rerank"] += time.perf_counter() - t
            t = time.perf_counter()
            neural_inputs = neural_matrix(self.ranking.neural_features, scores, cosine, logits, matrix)
            scores = self.ranking.neural_model.predict(neural_inputs, num_threads=1)
            steps["rank"] += time.perf_counter() - t
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))[:top_k]  # ties keep BM25's order
        why = [None] * len(order)
        if explain:
            t = time.perf_counter()
            why = self.ranking.explain(matrix, neural_inputs, order)
            steps["explain"] += time.perf_counter() - t
        return [Hit(hits[i].id, float(scores[i]), hits[i].text, hits[i].fields, why=w) for i, w in zip(order, why)]

    def _leg(self, queries, mode, n, rerank_top_k, expression, steps):
        """The n best hits per query of one Milvus leg; with rerank_top_k, those n reranked and the best rerank_top_k
        kept (the reranker's probability is then the score)."""
        start = time.perf_counter()
        seconds_before = getattr(self.encoder, "seconds", 0.0)
        found = self.searcher.search_batch(queries, n, mode, filter=expression)
        searched = time.perf_counter()
        encode = getattr(self.encoder, "seconds", 0.0) - seconds_before
        if mode != "bm25":
            steps["encode"] = encode
        steps["search"] = searched - start - encode
        if rerank_top_k is None:
            return [annotate(query, hits) for query, hits in zip(queries, found)]
        results = []
        for query, hits in zip(queries, found):
            reranked = self.reranker.rerank(query, [h.to_dict() for h in hits], rerank_top_k)
            results.append(
                annotate(
                    query,
                    [
                        Hit(
                            c["id"],
                            c["rerank_score"],
                            c["text"],
                            c.get("fields", {}),
                            recall_score=c["score"],
                            recall_rank=c["recall_rank"],
                        )
                        for c in reranked
                    ],
                )
            )
        steps["rerank"] = time.perf_counter() - searched
        return results


def check_paper_id(paper_id) -> int:
    """A paper id as an int: an int, or a string of digits ("18"); anything else is a SearchError."""
    if isinstance(paper_id, str) and paper_id.strip().isdecimal():
        return int(paper_id)
    if isinstance(paper_id, bool) or not isinstance(paper_id, (int, np.integer)):
        raise SearchError(
            f"a paper id is an integer (the paper's line in the corpus, from 0), got {type(paper_id).__name__} "
            f"{paper_id!r}"
        )
    return int(paper_id)


def store_count(searcher) -> int:
    """The live number of papers the searcher's collection holds."""
    from recall.milvus import store

    with store.milvus_errors(searcher.config, "counting documents"):
        return store.count_entities(searcher.client, searcher.config)


def _ms(steps):
    """{step: seconds} -> {step: milliseconds, rounded to 0.01}."""
    return {step: round(seconds * 1000, 2) for step, seconds in steps.items()}


def source_keywords(record) -> str:
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
