"""Search over a collection built by insert.py: dense (semantic vectors), bm25 (Milvus' BM25 function on the
text's character n-grams) and hybrid (both requests fused with reciprocal rank fusion by Milvus' hybrid_search).
These are the legs; the default search path (BM25 candidates + the learned ranking) is search.system.

    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher

    with MilvusSearcher(load_config(), TextEncoder(model_dir="output/pipeline/sample/export/recall")) as searcher:
        for hit in searcher.search("中西方语言与文化的差异", top_k=10, mode="hybrid"):
            print(hit.id, hit.score, hit.text)
"""

import contextlib
from dataclasses import dataclass, field

import numpy as np

from ns_common.bm25 import lexical_text
from ns_common.errors import BadInputError, ConfigError, ModelMismatchError
from recall.milvus import store

MODES = ("dense", "bm25", "hybrid")
QUERIES_PER_REQUEST = 64  # keeps each gRPC request small for a long --query_file


class SearchError(BadInputError):
    """A request that cannot be served (empty query, unknown id, mode the collection lacks)."""


def check_top_k(top_k) -> int:
    """top_k as a Python int: an int or a numpy integer between 1 and 16384 (Milvus' limit); a bool, a float
    (even 5.0) or anything else is a SearchError, not Milvus' own exit."""
    if isinstance(top_k, (bool, np.bool_)) or not isinstance(top_k, (int, np.integer)):
        raise SearchError(f"top_k must be an integer, got {type(top_k).__name__} {top_k!r}")
    if not 1 <= int(top_k) <= 16384:
        raise SearchError(f"top_k must be between 1 and 16384 (Milvus' limit), got {top_k}")
    return int(top_k)


def check_model(info, config, encoder, allow_model_mismatch=False) -> None:
    """ModelMismatchError when the collection's vectors were computed by another model than encoder's (its weights
    sha1 against the collection's meta["model"]); unknown on either side passes."""
    message = store.model_mismatch(
        info,
        config,
        getattr(encoder, "fingerprint", None),
        getattr(encoder, "source", "the model"),
        probe=(lambda: encoder.probe) if hasattr(encoder, "probe") else None,
    )
    if message and not allow_model_mismatch:
        raise ModelMismatchError(message)
    if message:
        from ns_common.utils import logger

        logger.warning(f"--allow_model_mismatch: {message}")


@dataclass
class Hit:
    id: int | str  # the paper's own id in a collection keyed by paper ids, else its corpus line
    score: float  # dense: inner product (cosine); bm25: BM25 score; hybrid: RRF score. Higher is better.
    text: str
    fields: dict = field(default_factory=dict)  # the paper's stored fields (store.HIT_FIELDS), when it has any
    matched: list = field(default_factory=list)  # the query's keywords the paper matches (search.highlight)
    why: dict | None = None  # the learned ranking's explanation of the score (search.system.Ranking.explain)
    recall_score: float | None = None  # a reranked hit's score and rank in the recall before the reranking
    recall_rank: int | None = None

    def to_dict(self) -> dict:
        """id, score and text, and what else the hit carries (fields, matched, why) when it carries it."""
        data = {"id": self.id, "score": self.score, "text": self.text}
        data.update({k: v for k, v in (("fields", self.fields), ("matched", self.matched)) if v})
        if self.why is not None:
            data["why"] = self.why
        return data


def hit_fields(entity) -> dict:
    """The record fields of a Milvus reply's entity (empty ones left out: a title-only corpus has none)."""
    fields = {}
    for name in store.HIT_FIELDS:
        value = entity.get(name)
        if name == "keywords" and value is not None:
            value = list(value)
        if value not in (None, "", 0, []):
            fields[name] = value
    return fields


def reply_rows(raw, with_vectors=False):
    """Per query of a pymilvus search reply: (its hits, their stored vectors as float32 [n, dim], or n Nones without
    with_vectors). pymilvus 3 turns every stored vector of a query's hits into a list of Python floats the first time
    any hit is looked at (~2 ms for BM25's 50 x 384 dims: a tenth of a search system query), although the reply holds
    them as one float column: that column is read here as one array, and the hits without the lazy decoding. A
    reply of another shape (another pymilvus, a field decoded lazily that is not the vectors) takes the public path."""
    column = None
    for hits in raw:
        lazy = getattr(hits, "lazy_field_data", None)
        if (
            lazy is not None
            and hasattr(hits, "start")
            and hasattr(hits, "get_raw_item")
            and all(f.field_name == store.DENSE_FIELD and not len(f.valid_data) for f in lazy)
        ):
            rows = [hits.get_raw_item(i) for i in range(len(hits))]  # the hits without decoding their vectors
            if with_vectors and rows:
                if column is None:  # one column for every query of the reply; hits.start: where this query's begin
                    data = lazy[0].vectors
                    column = np.asarray(data.float_vector.data, dtype=np.float32).reshape(-1, data.dim)
                yield rows, column[hits.start : hits.start + len(rows)]
                continue
        else:
            rows = list(hits)
            if with_vectors and rows:
                yield rows, np.asarray([h["entity"][store.DENSE_FIELD] for h in rows], dtype=np.float32)
                continue
        yield rows, [None] * len(rows)


# quotes an editor or input method types that Milvus' expression language does not know (it quotes with " or ')
TYPOGRAPHIC_QUOTES = "“”„‟‘’‚‛「」『』＂＇«»"


def check_filter(expression) -> str:
    """A --filter as given (None / "" for none); SearchError when it is not text, or its quoting is not Milvus' (a
    typographic quote outside a string, a string never closed): caught here, the expression never reaches Milvus,
    whose parser would only say "invalid parameter"."""
    if expression is None:
        return ""
    if not isinstance(expression, str):
        raise SearchError(f"the filter is {type(expression).__name__}, not a Milvus boolean expression (str)")
    expression = expression.strip()
    quote, start, escaped = None, 0, False
    for position, char in enumerate(expression):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote, start = char, position
        elif char in TYPOGRAPHIC_QUOTES:
            raise SearchError(
                f"filter {expression!r}: {char} (character {position + 1}) is not a quote Milvus knows: quote texts "
                f'with " or \', e.g. category == "工学"'
            )
    if quote:
        raise SearchError(f"filter {expression!r}: the text opened by {quote} at character {start + 1} is never closed")
    return expression


def excluding(doc_id, expression) -> str:
    """The filter of "more like this": the paper itself left out, and the user's filter."""
    return f"id != {int(doc_id)}" + (f" and ({expression})" if expression else "")


def incomplete_collection(info, config, count_rows):
    """The one-line warning for a collection whose rows are not the documents of the corpus its description names
    (an insert killed or stopped half-way: other hits, other BM25 statistics), naming the repair; None when they agree
    or cannot be compared (no corpus recorded, or a --partition, which holds a part). count_rows: () -> live rows."""
    documents = ((info.meta or {}).get("corpus") or {}).get("documents")
    if not documents or config.partition:
        return None
    rows = count_rows()
    if rows == documents:
        return None
    where = f"collection {config.collection} at {config.uri}"
    if rows < documents:
        return (
            f"{where} holds {rows} rows of the {documents} documents of its corpus (an insert stopped before the end): "
            f"searches miss the rest until it is completed, run python -m recall.milvus.insert with the same "
            f"--data_path, --embedding_path and --uri {config.uri} and --resume"
        )
    return f"{where} holds {rows} rows for the {documents} documents of its corpus: rebuild it with {store.REBUILD}"


class MilvusSearcher:
    def __init__(self, config, encoder=None, warn_truncation=True, allow_model_mismatch=False):
        """encoder (a recall.milvus.model.TextEncoder) embeds queries; needed for dense and hybrid modes. A collection
        whose vectors another model computed is refused (ModelMismatchError) unless allow_model_mismatch."""
        self.config = config
        self.encoder = encoder
        self.warn_truncation = warn_truncation
        self.allow_model_mismatch = allow_model_mismatch
        self.client = store.connect(config, must_exist=True)
        with store.milvus_errors(config, "opening the collection"):
            self.info = store.describe(self.client, config)
            if self.info is None:
                store.close(self.client, config)
                raise ConfigError(
                    f"no collection {config.collection!r} at {config.uri}; insert the corpus first (python -m "
                    f"recall.milvus.insert)"
                )
            store.check_partition(self.client, config)
            self.client.load_collection(config.collection)
        if store.analyzer_mismatch(self.info, config):
            store.close(self.client, config)
            raise ModelMismatchError(store.analyzer_mismatch(self.info, config))
        if encoder is not None and encoder.dim != self.info.dim:
            store.close(self.client, config)
            raise ModelMismatchError(
                f"the model gives {encoder.dim}-dim vectors but collection {config.collection} at {config.uri} holds "
                f"{self.info.dim}-dim ones: use the model the collection was built with"
            )
        if encoder is not None:
            try:
                check_model(self.info, config, encoder, allow_model_mismatch)
            except ModelMismatchError:
                store.close(self.client, config)
                raise
        with store.milvus_errors(config, "counting the collection's rows"):
            self.incomplete = incomplete_collection(
                self.info, config, lambda: store.count_entities(self.client, config)
            )
        if self.incomplete:
            from ns_common.utils import logger

            logger.warning(self.incomplete)

    def facets(self):
        """What the papers the collection holds offer to filter on ({"category": {value: papers}, "discipline": {...},
        "year": [first, last] or None}), counted over its rows when asked: not the description written when the
        collection was created, which a later insert of the same titles with other fields would leave stale."""
        from recall.milvus.data import FACET_FIELDS, FacetCounter

        counter = FacetCounter()
        with store.milvus_errors(self.config, "reading the collection's facets"):
            rows = self.client.query_iterator(
                self.config.collection,
                batch_size=16384,
                output_fields=[*FACET_FIELDS, "year"],
                partition_names=store.partition_names(self.config),
            )
            try:
                while batch := rows.next():
                    for row in batch:
                        counter.add(row)
            finally:
                rows.close()
        return counter.facets()

    def close(self) -> None:
        store.close(self.client, self.config)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def modes(self) -> tuple:
        """Modes this collection can serve (bm25 and hybrid need the BM25 field and Milvus >= 2.5)."""
        return MODES if self.info.has_bm25 else ("dense",)

    def check_request(self, queries, top_k, mode, have_vectors=False) -> tuple:
        """(the queries whitespace-normalised, top_k as an int) when this collection can serve them in `mode`;
        SearchError if not. The one check of a batch request's arguments (search_batch, bm25_with_vectors, and
        SearchSystem before it searches)."""
        if mode not in MODES:
            raise SearchError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        if mode not in self.modes:
            raise SearchError(
                f"--mode {mode} needs the BM25 field, which collection {self.config.collection} at "
                f"{self.config.uri} lacks (Milvus < 2.5, or inserted with bm25: false): use --mode dense"
            )
        if mode != "bm25" and self.encoder is None and not have_vectors:
            raise SearchError(f"--mode {mode} needs a model to embed the query (--model_dir or --params_path)")
        top_k = check_top_k(top_k)
        if isinstance(queries, (str, bytes)):
            raise SearchError("queries must be a list of texts, got a single " + type(queries).__name__)
        queries = list(queries)
        not_text = [i for i, q in enumerate(queries) if not isinstance(q, str)]
        if not_text:
            raise SearchError(f"query #{not_text[0] + 1} is {type(queries[not_text[0]]).__name__}, not text (str)")
        cleaned = [" ".join(q.split()) for q in queries]
        empty = [i for i, q in enumerate(cleaned) if not q]
        if empty:
            raise SearchError(f"empty query (query #{empty[0] + 1}): give some text to search for")
        return cleaned, top_k

    def search(self, query, top_k=10, mode="dense", filter=None) -> list:  # noqa: A002 - Milvus' own name
        """Ranked hits (best first) of one query."""
        if not isinstance(query, str):
            raise SearchError(f"the query is {type(query).__name__}, not text (str)")
        return self.search_batch([query], top_k, mode, filter=filter)[0]

    def search_batch(self, queries, top_k=10, mode="dense", vectors=None, filter=None) -> list:  # noqa: A002
        """One ranked hit list per query. A route may return fewer than top_k hits (e.g. BM25 when no
        query word occurs in the corpus). vectors: the queries' embeddings when already computed. filter: a Milvus
        boolean expression over the paper fields (`category == "工学" and year >= 2015`, `array_contains(keywords,
        "深度学习")`): only papers it holds for are searched; one Milvus cannot evaluate is a SearchError."""
        queries, top_k = self.check_request(queries, top_k, mode, have_vectors=vectors is not None)
        expression = check_filter(filter)
        if vectors is not None and len(vectors) != len(queries):
            raise SearchError(f"{len(vectors)} vectors for {len(queries)} queries")
        if mode != "bm25" and vectors is None and self.warn_truncation:
            self.encoder.warn_if_truncated(queries)
        results = []
        with self._errors(f"{mode} search", expression):
            for start in range(0, len(queries), QUERIES_PER_REQUEST):
                chunk = queries[start : start + QUERIES_PER_REQUEST]
                chunk_vectors = (
                    None
                    if vectors is None
                    else np.asarray(vectors[start : start + QUERIES_PER_REQUEST], dtype=np.float32)
                )
                results.extend(self._search_chunk(chunk, top_k, mode, chunk_vectors, expression))
        return results

    def search_vectors(self, vectors, top_k=10, filter=None, with_vectors=False) -> list:  # noqa: A002 - Milvus' own name
        """Dense search by query embeddings (float32 [n, dim]) computed elsewhere: [[Hit, ...], ...], or with_vectors
        each hit with its stored vector, [[(Hit, vector), ...], ...], as bm25_with_vectors (the search system unites
        the two legs' candidates: search/ranking.py united_pool)."""
        top_k = check_top_k(top_k)
        expression = check_filter(filter)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.info.dim)
        with self._errors("dense search", expression):
            return [
                hits
                for start in range(0, len(vectors), QUERIES_PER_REQUEST)
                for hits in self._dense(vectors[start : start + QUERIES_PER_REQUEST], top_k, expression, with_vectors)
            ]

    def _bm25_data(self, queries):
        """What a BM25 request sends: the query's character n-grams for a char_ngram collection, else the text."""
        if self.info.analyzer == "char_ngram":
            return [lexical_text(q, store.lexical_max_chars(self.config)) for q in queries]
        return queries

    def _search_chunk(self, queries, top_k, mode, vectors=None, expression=""):
        partitions = store.partition_names(self.config)
        if mode != "bm25" and vectors is None:
            vectors = self.encoder.encode(queries)
        if mode == "dense":
            return self._dense(vectors, top_k, expression)
        if mode == "bm25":
            return [[hit for hit, _ in hits] for hits in self._bm25(queries, top_k, expression=expression)]
        from pymilvus import AnnSearchRequest, RRFRanker

        pool = max(top_k, self.config.hybrid_candidates)
        requests = [
            AnnSearchRequest(
                data=vectors.tolist(),
                anns_field=store.DENSE_FIELD,
                param=self.config.search_params(self.info.index_type, pool),
                limit=pool,
                expr=expression or None,
            ),
            AnnSearchRequest(
                data=self._bm25_data(queries),
                anns_field=store.SPARSE_FIELD,
                param={"metric_type": "BM25"},
                limit=pool,
                expr=expression or None,
            ),
        ]
        raw = self.client.hybrid_search(
            self.config.collection,
            reqs=requests,
            ranker=RRFRanker(self.config.rrf_k),
            limit=top_k,
            output_fields=[store.TEXT_FIELD, *store.HIT_FIELDS],
            partition_names=partitions,
        )
        return self._hits(raw)

    def bm25_with_vectors(self, queries, top_k, with_vectors=True, filter=None) -> list:  # noqa: A002
        """BM25 hits per query, each with its stored vector (None without with_vectors): [[(Hit, vector), ...], ...].
        The vectors come back in the search's own reply (no second request for them). filter: a Milvus boolean
        expression over the paper fields (search_batch)."""
        queries, top_k = self.check_request(queries, top_k, "bm25")
        expression = check_filter(filter)
        with self._errors("bm25 search", expression):
            return [
                hits
                for start in range(0, len(queries), QUERIES_PER_REQUEST)
                for hits in self._bm25(
                    queries[start : start + QUERIES_PER_REQUEST],
                    top_k,
                    with_vectors=with_vectors,
                    expression=expression,
                )
            ]

    def _bm25(self, queries, top_k, with_vectors=False, expression="") -> list:
        """One BM25 request: [[(Hit, stored vector or None), ...], ...]."""
        fields = [store.TEXT_FIELD, *store.HIT_FIELDS] + ([store.DENSE_FIELD] if with_vectors else [])
        raw = self.client.search(
            self.config.collection,
            data=self._bm25_data(queries),
            anns_field=store.SPARSE_FIELD,
            limit=top_k,
            filter=expression,
            search_params={"metric_type": "BM25"},
            output_fields=fields,
            partition_names=store.partition_names(self.config),
        )
        # BM25 scores are positive; Milvus Lite 3.2 reports them negated
        return self._reply(raw, with_vectors, score=lambda distance: abs(float(distance)))

    def _dense(self, vectors, top_k, expression="", with_vectors=False):
        """One dense request: [[Hit, ...], ...], or with_vectors [[(Hit, stored vector), ...], ...]."""
        raw = self.client.search(
            self.config.collection,
            data=vectors.tolist(),
            anns_field=store.DENSE_FIELD,
            limit=top_k,
            filter=expression,
            search_params=self.config.search_params(self.info.index_type, top_k),
            output_fields=[store.TEXT_FIELD, *store.HIT_FIELDS] + ([store.DENSE_FIELD] if with_vectors else []),
            partition_names=store.partition_names(self.config),
        )
        return self._reply(raw, with_vectors) if with_vectors else self._hits(raw)

    def _hits(self, raw) -> list:
        """A search reply as [[Hit, ...], ...] per query."""
        return [[hit for hit, _ in hits] for hits in self._reply(raw)]

    def _reply(self, raw, with_vectors=False, score=float) -> list:
        """A search reply as [[(Hit, stored vector or None), ...], ...] per query; score: a hit's score from Milvus'
        distance."""
        by_paper = self.keyed_by_paper
        return [
            [
                (
                    Hit(
                        h["entity"]["paper_id"] if by_paper else int(h["id"]),
                        score(h["distance"]),
                        h["entity"].get(store.TEXT_FIELD, ""),
                        hit_fields(h["entity"]),
                    ),
                    vector,
                )
                for h, vector in zip(rows, vectors)
            ]
            for rows, vectors in reply_rows(raw, with_vectors)
        ]

    # ------------------------------------------------------------------ ids: corpus lines or the papers' own ids

    @property
    def keyed_by_paper(self) -> bool:
        """Whether papers are named by their own ids (a living index, store.KEY_PAPER), else by corpus line."""
        return self.info.key == store.KEY_PAPER

    def key_of(self, paper_id) -> int:
        """The primary key of a paper as callers name it: its own id (text; an int is taken as its text) in a
        collection keyed by paper ids, its corpus line (an int) otherwise."""
        return store.paper_key(str(paper_id)) if self.keyed_by_paper else int(paper_id)

    def _by_key(self, ids):
        """{primary key: the id as given} of ids."""
        return {self.key_of(i): (str(i) if self.keyed_by_paper else int(i)) for i in ids}

    def delete(self, paper_ids) -> list:
        """Deletes stored papers by their own ids (a collection keyed by paper ids; ConfigError otherwise); returns
        those that were there. Searches see it at once (flushed)."""
        from recall.milvus import update

        with store.milvus_errors(self.config, "delete"):
            return update.delete_papers(self.client, self.config, self.info, paper_ids)

    @contextlib.contextmanager
    def _errors(self, action, expression):
        """store.milvus_errors, except that a failed filtered request whose filter Milvus refuses on its own (a query
        with it fails too) is a SearchError naming the filter: the user's input, not the service."""
        from pymilvus.exceptions import MilvusException

        with store.milvus_errors(self.config, action):
            try:
                yield
            except MilvusException:
                if expression:
                    self.check_filter_expression(expression)  # raises SearchError when the filter is at fault
                raise

    def check_filter_expression(self, expression) -> None:
        """SearchError naming the expression when Milvus cannot evaluate it over this collection (a syntax error,
        an unknown field, a value of the wrong type); None when it can."""
        from pymilvus.exceptions import MilvusException

        try:
            self.client.query(self.config.collection, filter=expression, limit=1, output_fields=["id"])
        except MilvusException as e:
            message = str(getattr(e, "message", "") or e).splitlines()[0]
            raise SearchError(f"filter {expression!r}: Milvus cannot evaluate it ({message[:200]})") from None

    def get_records(self, ids, with_vectors=False) -> dict:
        """{id: {"text": title, "fields": {...}, "abstract": ...}} of stored papers (and "vector", the stored one,
        with_vectors); unknown ids are absent."""
        by_key = self._by_key(ids)
        with store.milvus_errors(self.config, "get by id"):
            rows = self.client.get(
                self.config.collection,
                ids=list(by_key),
                output_fields=[store.TEXT_FIELD, *store.HIT_FIELDS, "abstract"]
                + ([store.DENSE_FIELD] if with_vectors else []),
                partition_names=store.partition_names(self.config),
            )
        records = {}
        for r in rows:
            paper = by_key[int(r["id"])]
            if self.keyed_by_paper and r["paper_id"] != paper:
                continue  # another paper's id with the same key: never stored (insert refuses it), never answered
            records[paper] = {
                "text": r[store.TEXT_FIELD],
                "fields": hit_fields(r),
                "abstract": r.get("abstract") or "",
            }
            if with_vectors:
                records[paper]["vector"] = r[store.DENSE_FIELD]
        return records

    def more_like_this(self, doc_id, top_k=10, filter=None, source=None) -> list:  # noqa: A002
        """Papers like stored paper doc_id, itself left out: searched by its stored vector and by its title's BM25,
        fused by Milvus' RRF (its vector alone where the collection has no BM25 field). No model is needed.
        source: the paper's record with its vector (get_records(..., with_vectors=True)) when already fetched."""
        top_k = check_top_k(top_k)
        expression = excluding(self.key_of(doc_id), check_filter(filter))
        source = source or self.get_records([doc_id], with_vectors=True).get(doc_id)
        if source is None:
            raise SearchError(
                f"no document with id {doc_id} in collection {self.config.collection} at {self.config.uri}"
            )
        text = source["text"]
        vectors = np.asarray(source["vector"], dtype=np.float32).reshape(1, -1)
        mode = "hybrid" if "hybrid" in self.modes and text.strip() else "dense"
        with self._errors(f"more-like-this ({mode}) search", check_filter(filter)):
            return self._search_chunk([text], top_k, mode, vectors, expression)[0]

    def get_by_id(self, ids, with_vectors=False) -> dict:
        """{id: text} (or {id: (text, vector)}) of the stored documents; unknown ids are absent."""
        fields = [store.TEXT_FIELD] + ([store.DENSE_FIELD] if with_vectors else [])
        by_key = self._by_key(ids)
        with store.milvus_errors(self.config, "get by id"):
            rows = self.client.get(
                self.config.collection,
                ids=list(by_key),
                output_fields=fields,
                partition_names=store.partition_names(self.config),
            )
        if with_vectors:
            return {by_key[int(r["id"])]: (r[store.TEXT_FIELD], r[store.DENSE_FIELD]) for r in rows}
        return {by_key[int(r["id"])]: r[store.TEXT_FIELD] for r in rows}

    def search_by_id(self, doc_id, top_k=10) -> list:
        """Neighbours of a stored document by its own vector (PaddleNLP's milvus_ann_search.py --index)."""
        found = self.get_by_id([doc_id], with_vectors=True)
        if doc_id not in found:
            raise SearchError(
                f"no document with id {doc_id} in collection {self.config.collection} at {self.config.uri}"
            )
        return self.search_vectors(found[doc_id][1], top_k)[0]
