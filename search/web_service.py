r"""HTTP service and web page over the Milvus index: text -> vector, and query -> top-K documents.

    python -m search.web_service --model_dir output/pipeline/sample/export/recall \
        [--config recall/milvus/config.yml --uri ./milvus_data/neural_search.db] \
        [--reranker_dir output/pipeline/sample/export/reranker] [--ranking_dir output/pipeline/sample/export/ranking] \
        [--host 127.0.0.1 --port 8000]

then open http://127.0.0.1:8000/ (the page) or call the JSON API:

    GET  /api/health  status, model, dim, collection, documents, modes, reranker, facets, limits
    POST /api/embed   {"texts": ["..."]}  -> {"model", "dim", "vectors", "norms", "timings_ms"}
    POST /api/search  {"query": "...", "top_k": 10, "mode": "system|dense|bm25|hybrid", "rerank": false,
                       "filters": {"category": [...], "discipline": [...], "year_min": 2010, "year_max": 2020}}
                      (mode omitted: the default search path, "system", when a fitted ranking is found (--ranking_dir,
                      default `ranking` beside --model_dir) with the models it uses; else "dense")
                      -> {"hits": [{"rank", "id", "text", "score", "recall_score", "rerank_score", "fields",
                          "matched", "highlights", "why"}], "timings_ms"}
    POST /api/more_like_this  {"id": 18, "top_k": 10, "filters": {...}} -> the same answer, papers like paper 18
    GET  /openapi.json (and /docs, whose Swagger UI comes from a CDN; the page itself needs none)

The models and the Milvus client are loaded once at start. Neither Paddle Inference predictors nor the
Milvus Lite client may be called from two threads at once, so requests take turns on one lock (the
"wait" timing says how long a request queued). Bad requests get a 4xx JSON answer {"error": "..."};
the service keeps serving. HEAD works wherever GET does.

Connections are guarded (uvicorn alone keeps a stalled one open forever): --header_timeout bounds the time to
send a request head, --body_timeout a body's pauses (408), --max_connections the connections served at once
(503 beyond), --allowed_hosts the Host header's names (400 for others: DNS rebinding); malformed HTTP gets a
JSON 400 as well.
"""

import argparse
import asyncio
import http
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from typing import Literal

import numpy as np

from ns_common.cli import entry_point, fail, positive_int
from ns_common.errors import BadInputError, MilvusUnavailableError, NeuralSearchError
from ns_common.text import has_visible_text
from ns_common.utils import logger
from recall.milvus.config import add_config_args, load_config
from recall.milvus.data import FACET_FIELDS
from recall.milvus.model import add_model_args, check_model_args
from recall.milvus.search import MODES
from search.highlight import annotate, highlight_spans
from search.system import (
    CANDIDATES,
    RANKING_FILE,
    Ranking,
    SearchSystem,
    default_ranking_dir,
    needed_components,
    source_keywords,
)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MILVUS_MAX_TOP_K = 16384  # Milvus' own limit on the hits of one search
MAX_ID = 2**63 - 1  # Milvus' INT64 primary key
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes the service to the network)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--reranker_dir",
        default=None,
        help="ERNIE-Gram reranker (exported dir or checkpoint dir); without it rerank requests get a 400",
    )
    parser.add_argument(
        "--rerank_candidates", type=int, default=50, help="recall hits handed to the reranker per query"
    )
    parser.add_argument(
        "--ranking_dir",
        default=None,
        help="the system's fitted ranking, search/fit.py's output (default: `ranking` "
        "beside --model_dir, when present)",
    )
    parser.add_argument("--max_texts", type=int, default=32, help="most texts in one /api/embed request")
    parser.add_argument("--max_text_length", type=int, default=1000, help="most characters of a text or a query")
    parser.add_argument(
        "--max_top_k",
        type=int,
        default=100,
        help=f"largest top_k of /api/search (at most {MILVUS_MAX_TOP_K}, Milvus' limit)",
    )
    parser.add_argument("--max_body_bytes", type=int, default=1 << 20, help="largest request body")
    parser.add_argument(
        "--header_timeout",
        type=float,
        default=10.0,
        help="seconds a connection has to send a complete request head; then it is closed (408 if it sent part of one)",
    )
    parser.add_argument(
        "--body_timeout",
        type=float,
        default=10.0,
        help="seconds a request body may make no progress; then a 408 and the connection is closed",
    )
    parser.add_argument(
        "--max_connections",
        type=positive_int,
        default=64,
        help="open connections served at once; a request on one over the limit gets a 503 and is closed",
    )
    parser.add_argument(
        "--allowed_hosts",
        default=None,
        help="comma-separated names the Host header may carry (port ignored; `*`: any); other Host headers "
        "get a 400 (DNS rebinding). Default: localhost, 127.0.0.1, ::1 and --host when it is one address",
    )
    parser.add_argument("--log_level", default="info", choices=("debug", "info", "warning", "error"))
    add_model_args(parser, batch_size=32)
    add_config_args(parser, skip=("batch_size",))
    args = parser.parse_args(argv)
    check_model_args(args)
    if args.reranker_dir:
        from ernie_matching.reranker import reranker_kind

        reranker_kind(args.reranker_dir)
    for name in ("rerank_candidates", "max_texts", "max_text_length", "max_top_k", "max_body_bytes"):
        if getattr(args, name) < 1:
            fail(f"--{name} must be positive, got {getattr(args, name)}")
    if args.max_top_k > MILVUS_MAX_TOP_K:
        fail(f"--max_top_k must be at most {MILVUS_MAX_TOP_K} (Milvus' limit on one search), got {args.max_top_k}")
    for name in ("header_timeout", "body_timeout"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            fail(f"--{name} must be a positive number of seconds, got {getattr(args, name)}")
    args.allowed_hosts = parse_allowed_hosts(args.allowed_hosts, args.host)
    if not 0 <= args.port <= 65535:
        fail(f"--port {args.port}: expected 0..65535")
    check_port_free(args.host, args.port)
    return args


def default_allowed_hosts(host):
    """The Host names answered by default: the loopback names, and the address the service listens on when it is
    one address (not 0.0.0.0 or ::, where the names the network uses cannot be guessed: --allowed_hosts)."""
    return set(LOCAL_HOSTS) | ({host_name(host)} if host_name(host) not in ANY_ADDRESS else set())


def parse_allowed_hosts(text, host):
    """--allowed_hosts ("a.example,b.example", "*" for any; None: default_allowed_hosts) -> the set of names."""
    if text is None:
        return default_allowed_hosts(host)
    names = {host_name(name) for name in text.split(",") if name.strip()}
    if not names:
        fail(f"--allowed_hosts {text!r}: give at least one host name, or * for any")
    return names


def host_name(value):
    """A Host header or host name -> its name, lower-cased, without port, IPv6 brackets or a trailing dot
    ("[::1]:8000" -> "::1", "LocalHost.:80" -> "localhost")."""
    value = value.strip().lower()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def host_allowed(value, allowed):
    return "*" in allowed or host_name(value) in allowed


def check_port_free(host, port):
    """Fails before any model is loaded when the address is taken (uvicorn would only notice after)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            fail(f"cannot listen on {host}:{port}: {e.strerror or e} (another service there? pick another --port)")


class ApiError(Exception):
    """A request the service answers with an HTTP error status and a one-line message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class BodyLimit:
    """ASGI middleware: a request body over max_bytes gets a 413 before it is buffered, whether it is
    announced by Content-Length or streamed (Transfer-Encoding: chunked, counted as it arrives)."""

    def __init__(self, app, max_bytes):
        self.app = app
        self.max_bytes = max_bytes

    def too_large(self):
        from starlette.exceptions import HTTPException

        return HTTPException(413, f"request body over {self.max_bytes} bytes (--max_body_bytes)")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            from starlette.responses import JSONResponse

            return await JSONResponse({"error": self.too_large().detail}, status_code=413)(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self.too_large()  # FastAPI passes it on while reading the body: the HTTPException handler answers
            return message

        await self.app(scope, counted_receive, send)


class BodyTimeout:
    """ASGI middleware: a request body that makes no progress for `seconds` (a client announcing more bytes than
    it sends) gets a 408 and the connection is closed, instead of holding a connection and a worker forever."""

    def __init__(self, app, seconds):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body_done = False

        async def timed_receive():
            nonlocal body_done
            if body_done:  # the body is read: a wait for the client's disconnect may take as long as it takes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                from starlette.exceptions import HTTPException

                raise HTTPException(
                    408, f"request body stalled: no data for {self.seconds:g} s (--body_timeout)"
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)


class HostCheck:
    """ASGI middleware: a request whose Host header names none of the allowed hosts gets a 400 (a page of another
    site that resolves its name to this address, DNS rebinding, cannot use the service). No Host header (HTTP/1.0)
    passes: a browser always sends one."""

    def __init__(self, app, allowed):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host")
            if host is not None and not host_allowed(host.decode("latin-1"), self.allowed):
                from starlette.responses import JSONResponse

                names = ", ".join(sorted(self.allowed))
                message = (
                    f"Host {printable(host.decode('latin-1'))!r} is not served here (allowed: {names}; --allowed_hosts)"
                )
                return await JSONResponse({"error": message}, status_code=400)(scope, receive, send)
        await self.app(scope, receive, send)


class HeadAsGet:
    """ASGI middleware: HEAD is answered wherever GET is (the page, /api/health, static files, /openapi.json): the
    application sees a GET, and the server sends the head of its answer without the body (uvicorn drops the
    body of an answer to HEAD)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = dict(scope, method="GET")
        await self.app(scope, receive, send)


def json_error_bytes(status, message, reason=None):
    """A complete HTTP/1.1 answer {"error": message} that closes the connection, as bytes to write to a socket."""
    body = json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")
    phrase = reason or http.HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_protocol(header_timeout, max_connections):
    """uvicorn's HTTP/1.1 protocol (h11) with what it lacks against stalled or abusive connections: a connection
    must deliver a complete request head within header_timeout seconds (a slowloris client sending a byte at a
    time is closed, with a 408 when it sent part of a head); a request on a connection over max_connections open
    ones gets a 503 and the connection is closed; malformed HTTP (request line, header, Host missing, a head over
    h11's 16 KB) gets a JSON 400 (431) instead of uvicorn's text/plain. Passed as uvicorn's `http=`."""
    import h11
    from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
    from starlette.responses import JSONResponse
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class RecordingConnection(h11.Connection):
        """h11's connection, keeping the last protocol error it raised (uvicorn only says "Invalid HTTP request")."""

        error = None

        def next_event(self):
            try:
                return super().next_event()
            except h11.RemoteProtocolError as e:
                self.error = e
                raise

    async def over_capacity(scope, receive, send):
        message = f"too many open connections (over {max_connections}, --max_connections); retry later"
        await JSONResponse({"error": message}, status_code=503, headers={"connection": "close", "retry-after": "1"})(
            scope, receive, send
        )

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, config, *rest, **kwargs):
            super().__init__(config, *rest, **kwargs)
            self.head_limit = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
            self.conn = RecordingConnection(h11.SERVER, self.head_limit)
            self.head_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                self.logger.warning(
                    f"{len(self.connections)} open connections (--max_connections {max_connections}): "
                    f"the next request of {self.client} gets a 503"
                )
                self.app = over_capacity  # this connection's own requests only
            self.start_head_timer()

        def connection_lost(self, exc):
            self.stop_head_timer()
            super().connection_lost(exc)

        def data_received(self, data):
            super().data_received(data)
            if (
                self.conn.their_state is h11.IDLE
            ):  # part of a request head (or of the next one on a kept-alive connection)
                self.start_head_timer()
            else:
                self.stop_head_timer()

        def start_head_timer(self):
            if self.head_timer is None and not self.transport.is_closing():
                self.head_timer = self.loop.call_later(header_timeout, self.head_timed_out)

        def stop_head_timer(self):
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def head_timed_out(self):
            self.head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.conn.trailing_data[0]:  # a head begun and never finished; nothing at all: just closed
                self.logger.warning(f"{self.client}: no complete request head in {header_timeout:g} s: 408, closed")
                self.transport.write(
                    json_error_bytes(408, f"incomplete request head after {header_timeout:g} s (--header_timeout)")
                )
            self.transport.close()

        def send_400_response(self, msg):
            """Malformed HTTP: a JSON answer naming what h11 found wrong, then the connection is closed."""
            error = self.conn.error
            status = getattr(error, "error_status_hint", 400) or 400
            if status == 431:
                message = f"request head over {self.head_limit} bytes"
            else:
                message = f"malformed HTTP request: {printable(str(error))[:200] if error else msg}"
            self.stop_head_timer()
            if self.cycle is None or not self.cycle.response_started:
                if (
                    self.cycle is not None
                ):  # a request whose body turned out malformed: its application sees a disconnect
                    self.cycle.response_started = self.cycle.disconnected = True
                    self.cycle.message_event.set()
                self.transport.write(json_error_bytes(status, message))
            self.transport.close()

    return GuardedH11Protocol


def bad_characters(text):
    """Why text cannot be searched, or None: a lone UTF-16 surrogate (JSON allows "\\ud800", UTF-8 cannot
    encode it, and neither the tokenizer nor Milvus can take it) or a NUL character."""
    found = BAD_CHARACTERS.search(text)
    if found is None:
        return None
    what = (
        "a NUL character" if found.group() == "\x00" else f"an unpaired surrogate {found.group()!r} (not Unicode text)"
    )
    return f"{what} at character {found.start()}"


def printable(text):
    """text on one line, with control characters and what UTF-8 cannot encode (lone surrogates) as escapes."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)


BAD_CHARACTERS = re.compile("[\ud800-\udfff\x00]")


def collection_facets(meta):
    """What the collection offers to filter on, from meta["facets"] (MilvusSearcher.facets counts them over its rows):
    {"category": {value: papers}, "discipline": {value: papers}, "year": [first, last] or None}; empty values for a
    collection of titles only (or one built before the facets were kept)."""
    stored = (meta or {}).get("facets") or {}
    facets = {name: dict(stored.get(name) or {}) for name in FACET_FIELDS}
    years = stored.get("year")
    facets["year"] = [int(years[0]), int(years[1])] if years else None
    return facets


def filter_expression(filters, facets):
    """The Milvus boolean expression of a request's filters ({"category": [...], "discipline": [...], "year_min": y,
    "year_max": y}, each optional, types already checked; "" for none), e.g.
    `category in ["工学", "理学"] and year >= 2010 and year <= 2020`.

    Only values the collection's facets list are accepted, and the expression is written here from them (strings
    quoted by json.dumps), so no text of the request reaches Milvus as an expression. A value the collection does
    not have, a year outside its years, or year_min after year_max: ApiError 422 naming the field."""
    clauses = []
    for name in FACET_FIELDS:
        values = list(dict.fromkeys(filters.get(name) or []))  # an empty list: no condition
        if not values:
            continue
        unknown = [value for value in values if value not in facets[name]]
        if unknown:
            known = list(facets[name])
            offered = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") if known else "none"
            raise ApiError(
                422, printable(f"filters.{name}: unknown value {unknown[0]!r} (this collection's values: {offered})")
            )
        literals = ", ".join(json.dumps(value, ensure_ascii=False) for value in values)
        clauses.append(f"{name} in [{literals}]")
    year_min, year_max = filters.get("year_min"), filters.get("year_max")
    for key, year, operator in (("year_min", year_min, ">="), ("year_max", year_max, "<=")):
        if year is None:
            continue
        if facets["year"] is None:
            raise ApiError(422, f"filters.{key}: this collection's papers have no year to filter on")
        first, last = facets["year"]
        if not first <= year <= last:
            raise ApiError(422, f"filters.{key}: {year} is outside this collection's years, {first}..{last}")
        clauses.append(f"year {operator} {int(year)}")
    if year_min is not None and year_max is not None and year_min > year_max:
        raise ApiError(422, f"filters.year_min: {year_min} is after filters.year_max {year_max}")
    return " and ".join(clauses)


def hit_json(hit):
    """A Hit as the API answers it: id, score, text, the paper's stored fields, the query keywords it matches,
    where they are in the title ([start, end] character ranges), and the ranking's `why` when a model ranked."""
    data = hit.to_dict()
    data["fields"] = hit.fields
    data["matched"] = hit.matched
    data["highlights"] = highlight_spans(hit.matched, hit.text)
    return data


class SearchService:
    """The recall model, the Milvus collection and the optional reranker, used by one request at a time."""

    def __init__(self, args, config):
        from recall.milvus import store
        from recall.milvus.model import TextEncoder, TimedEncoder
        from recall.milvus.search import MilvusSearcher

        self.lock = threading.Lock()
        self.model_name = os.path.normpath(args.model_dir or args.params_path)
        self.encoder = TimedEncoder(TextEncoder.from_args(args))
        self.encoder.dim  # noqa: B018 - a model that gives no vectors (the reranker's export) is a one-line error
        self.reranker, self.reranker_name = None, None
        if args.reranker_dir:  # before Milvus: a wrong model is a one-line error (Reranker checks its output)
            from ernie_matching.reranker import Reranker

            self.reranker = Reranker.from_dir(
                args.reranker_dir,
                device=args.device,
                cpu_threads=args.cpu_threads,
                enable_mkldnn=args.enable_mkldnn,
                precision=args.precision,
            )
            self.reranker_name = os.path.normpath(args.reranker_dir)
        self.searcher = MilvusSearcher(config, self.encoder)
        # the default search path (search.system): served when a fitted ranking is found, with the models it uses
        self.system = None
        ranking_dir = args.ranking_dir or default_ranking_dir(args.model_dir)
        if "bm25" not in self.searcher.modes:  # e.g. a Milvus 2.3 server: the legs it has, said once
            logger.info(
                f"collection {config.collection} has no BM25 field: modes {', '.join(self.searcher.modes)} only, no search system"
            )
        elif args.ranking_dir or (ranking_dir and os.path.isfile(os.path.join(ranking_dir, RANKING_FILE))):
            ranking = Ranking.load(ranking_dir, args.model_dir, args.reranker_dir)
            needed = needed_components("system", ranking)  # the recall model and the reranker when its fit kept them
            self.system = SearchSystem(
                self.searcher,
                ranking,
                self.encoder if "encoder" in needed else None,
                self.reranker if "reranker" in needed else None,
            )
        else:
            logger.info(
                f"no fitted ranking at {ranking_dir}: modes dense, bm25, hybrid only (python -m search.fit fits one)"
            )
        self.modes = (["system"] if self.system else []) + list(self.searcher.modes)
        self.default_mode = self.modes[0] if self.system else "dense"
        with store.milvus_errors(config, "counting documents"):
            self.documents = store.count_entities(self.searcher.client, config)
        self.dim = self.searcher.info.dim
        self.facets = collection_facets({"facets": self.searcher.facets()})  # its rows', not its description's
        self.rerank_candidates = args.rerank_candidates
        # the first BM25 search loads Milvus' jieba dictionary (~1.5 s): pay it now, not on a user's query
        for mode in self.searcher.modes:
            self.searcher.search("预热", 1, mode)
        if self.system:
            self.system.search("预热", 1)
        self.started = time.time()

    def close(self):
        self.searcher.close()

    def _locked(self, work):
        """Runs work() alone; returns (result, seconds waited for the lock). Failures of the model or of
        Milvus become a 5xx answer (logged with their traceback) instead of ending the service."""
        queued = time.perf_counter()
        with self.lock:
            waited = time.perf_counter() - queued
            try:
                return work(), waited
            except Exception as e:  # noqa: BLE001 - one bad request must not stop the service
                raise classify_failure(e) from None

    def health(self):
        """Status, with a live count of the collection (so a broken Milvus shows here as a 503)."""
        from recall.milvus import store

        def count():
            with store.milvus_errors(self.searcher.config, "counting documents"):
                return store.count_entities(self.searcher.client, self.searcher.config)

        documents, _ = self._locked(count)
        return {
            "status": "ok",
            "model": self.model_name,
            "dim": self.dim,
            "max_seq_length": self.encoder.max_seq_length,
            "collection": self.searcher.config.collection,
            "uri": self.searcher.config.uri,
            "documents": documents,
            "modes": self.modes,
            "default_mode": self.default_mode,
            "reranker": self.reranker_name,
            "facets": self.facets,
            "uptime_s": round(time.time() - self.started, 1),
        }

    def embed(self, texts):
        def work():
            start = time.perf_counter()
            return self.encoder.encode(texts), time.perf_counter() - start

        (vectors, seconds), waited = self._locked(work)
        return {
            "model": self.model_name,
            "dim": int(vectors.shape[1]),
            "vectors": vectors.tolist(),
            "norms": np.linalg.norm(vectors, axis=1).tolist(),
            "timings_ms": ms(wait=waited, encode=seconds),
        }

    def search(self, query, top_k, mode, rerank, filters=None):
        """filters: the request's (filter_expression); every mode searches only the papers they hold for."""
        mode = mode or self.default_mode
        filters = filters or {}
        expression = filter_expression(filters, self.facets)
        if rerank and "reranker" in needed_components(mode, None, rerank) and self.reranker is None:
            raise ApiError(400, "rerank is on but no reranker is loaded: start the service with --reranker_dir")
        if mode == "system":
            if self.system is None:
                why = (
                    "the collection has no BM25 field"
                    if "bm25" not in self.searcher.modes
                    else "no fitted ranking was found (--ranking_dir)"
                )
                raise ApiError(400, f"mode system is not available: {why}; available: {', '.join(self.modes)}")
            if rerank:
                raise ApiError(
                    400,
                    "mode system already ranks with the neural signals its fit kept: rerank goes with dense, bm25 or hybrid",
                )
            if top_k > CANDIDATES:
                raise ApiError(
                    422, f"mode system ranks BM25's top {CANDIDATES}: top_k must be at most {CANDIDATES}, got {top_k}"
                )
            return self._answer(query, top_k, mode, rerank, filters, self._system_recall(query, expression))
        if mode not in self.searcher.modes:
            raise ApiError(
                400,
                f"mode {mode} needs the BM25 field, which collection {self.searcher.config.collection} lacks; "
                f"available: {', '.join(self.searcher.modes)}",
            )
        return self._answer(query, top_k, mode, rerank, filters, self._leg_recall(query, mode, expression))

    def _leg_recall(self, query, mode, expression):
        """n -> (the n best hits of one Milvus route among the papers the filter expression holds for, timings)."""
        from recall.milvus.search import SearchError

        def recall(n):
            self.encoder.seconds = 0.0
            start = time.perf_counter()
            try:
                hits = annotate(query, self.searcher.search(query, n, mode, filter=expression))
            except SearchError as e:
                raise ApiError(400, str(e)) from None
            timings = {"encode": self.encoder.seconds} if mode != "bm25" else {}
            timings["milvus"] = time.perf_counter() - start - self.encoder.seconds
            return [hit_json(h) for h in hits], timings

        return recall

    def _system_recall(self, query, expression):
        """n -> (the n best hits of the search system among the papers the filter expression holds for, each with
        the ranking's `why`; timings: encode, milvus, features, rerank, rank, explain; a step the ranking does not
        use is left out)."""

        def recall(n):
            hits = [hit_json(h) for h in self.system.search(query, n, filter=expression)]
            steps = self.system.timings
            timings = {"milvus": steps["search"], "features": steps["features"], "rank": steps["rank"]}
            if self.system.ranking.uses_dense:
                timings["encode"] = steps["encode"]
            if self.system.ranking.uses_reranker:
                timings["rerank"] = steps["rerank"]
            if "explain" in steps:
                timings["explain"] = steps["explain"]
            return hits, timings

        return recall

    def _answer(self, query, top_k, mode, rerank, filters, recall):
        """Runs recall (and the plain reranking when asked) alone under the lock; the JSON answer."""

        def work():
            hits, timings = recall(max(top_k, self.rerank_candidates) if rerank else top_k)
            hits = [dict(h, recall_score=h["score"]) for h in hits]
            if rerank:
                start = time.perf_counter()
                # best rerank_score first; each hit keeps its recall_score and gains recall_rank
                hits = [dict(hit, score=hit["rerank_score"]) for hit in self.reranker.rerank(query, hits, top_k)]
                timings["rerank"] = time.perf_counter() - start
            return hits[:top_k], timings

        start = time.perf_counter()
        (hits, timings), waited = self._locked(work)
        hits = [{"rank": rank, **hit} for rank, hit in enumerate(hits, 1)]
        return {
            "query": query,
            "mode": mode,
            "rerank": rerank,
            "top_k": top_k,
            "filters": filters,
            "hits": hits,
            "timings_ms": ms(wait=waited, **timings, total=time.perf_counter() - start),
        }

    def more_like_this(self, doc_id, top_k, filters=None):
        """Papers like stored paper doc_id (itself left out) among those the filters hold for: searched by its stored
        vector and its title (MilvusSearcher.more_like_this); the answer of search() with mode "more_like_this",
        the paper as `source`. A hit's `matched`: the paper's keywords (else its title's words) it shares."""
        filters = filters or {}
        expression = filter_expression(filters, self.facets)

        def work():
            start = time.perf_counter()
            found = self.searcher.get_records([doc_id], with_vectors=True) if 0 <= doc_id <= MAX_ID else {}
            source = found.get(doc_id)
            if source is None:
                raise ApiError(404, f"no document with id {doc_id} in collection {self.searcher.config.collection}")
            hits = self.searcher.more_like_this(doc_id, top_k, filter=expression, source=source)
            annotate(source_keywords(source), hits)
            return source, [hit_json(h) for h in hits], time.perf_counter() - start

        start = time.perf_counter()
        (source, hits, seconds), waited = self._locked(work)
        hits = [{"rank": rank, **hit, "recall_score": hit["score"]} for rank, hit in enumerate(hits, 1)]
        return {
            "query": source["text"],
            "mode": "more_like_this",
            "rerank": False,
            "top_k": top_k,
            "filters": filters,
            "source": {"id": doc_id, "text": source["text"], "fields": source["fields"]},
            "hits": hits,
            "timings_ms": ms(wait=waited, milvus=seconds, total=time.perf_counter() - start),
        }


def classify_failure(error):
    """The one place that turns a failure while answering a request into an ApiError: the request's own
    fault (BadInputError, e.g. recall.milvus.search.SearchError) is a 4xx naming what is wrong, a failing
    backend (MilvusUnavailableError: store.milvus_errors; a raw MilvusException) a 503, models or settings that
    do not fit (ModelMismatchError, ConfigError, any other NeuralSearchError) a 500 with their message,
    anything else a 500; each a one-line JSON answer, the details in the service log."""
    from pymilvus.exceptions import MilvusException

    if isinstance(error, ApiError):
        return error
    if isinstance(error, BadInputError):
        return ApiError(400, str(error))
    if isinstance(error, UnicodeError):
        return ApiError(422, f"the request holds text that cannot be encoded as UTF-8 ({error.reason})")
    if isinstance(error, (MilvusUnavailableError, MilvusException)):
        logger.error(f"Milvus request failed: {error}")
        return ApiError(503, "the search backend (Milvus) failed on this request; see the service log")
    if isinstance(error, NeuralSearchError):  # ModelMismatchError, ConfigError: the service's own set-up
        logger.error(f"request failed: {error}")
        return ApiError(500, str(error))
    logger.error("request failed", exc_info=error)
    return ApiError(500, f"internal error ({type(error).__name__}); see the service log")


def ms(**seconds):
    return {name: round(value * 1000, 2) for name, value in seconds.items()}


def create_app(service, args):
    """The FastAPI application: JSON API, the page, uniform {"error": ...} answers for every failure."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
    from starlette.exceptions import HTTPException

    class EmbedRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[StrictStr] = Field(
            description=f"texts to embed (at most {args.max_texts}, each at most {args.max_text_length} characters)"
        )

    class Filters(BaseModel):
        """Which papers to search (every field optional; the values /api/health lists under facets)."""

        model_config = ConfigDict(extra="forbid")
        category: list[StrictStr] | None = Field(None, description="papers of any of these categories")
        discipline: list[StrictStr] | None = Field(None, description="papers of any of these disciplines")
        year_min: StrictInt | None = Field(None, description="papers of this year or later")
        year_max: StrictInt | None = Field(None, description="papers of this year or earlier")

    filters_field = Field(
        None,
        description="search only the papers these hold for (all given conditions): values the collection's facets "
        "list (GET /api/health), years within its range; anything else is a 422",
    )

    class SearchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: StrictStr = Field(description=f"query text (at most {args.max_text_length} characters)")
        top_k: StrictInt = Field(
            10, description=f'hits to return, 1..{args.max_top_k} (an integer: not "5", 5.0 or true)'
        )
        mode: Literal[("system",) + MODES] | None = Field(
            None,
            description="system (the default search path: BM25 candidates reordered by the learned ranking), dense "
            "(vectors), bm25 (character n-grams) or hybrid (both, Milvus RRF); omitted: the service's default",
        )
        rerank: StrictBool = Field(False, description="rerank the recall hits with the ERNIE-Gram reranker")
        filters: Filters | None = filters_field

    class MoreLikeThisRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: StrictInt = Field(description="a stored paper's id (its line in the corpus file)")
        top_k: StrictInt = Field(10, description=f"hits to return, 1..{args.max_top_k}")
        filters: Filters | None = filters_field

    app = FastAPI(
        title="neural_search",
        version="0.1.0",
        description="Semantic literature search: text -> vector, query -> top-K documents (Milvus + ERNIE).",
    )

    def check_text(text, what):
        if not text.strip():
            raise ApiError(422, f"{what} is empty: give some text")
        if len(text) > args.max_text_length:
            raise ApiError(
                422, f"{what} has {len(text)} characters; the limit is {args.max_text_length} (--max_text_length)"
            )
        reason = bad_characters(text)
        if reason:
            raise ApiError(422, f"{what} holds {reason}: send UTF-8 text")
        if not has_visible_text(text):
            raise ApiError(
                422,
                f"{what} has no visible character (only blanks, invisible, unassigned or combining ones): give some text",
            )

    app.add_middleware(BodyLimit, max_bytes=args.max_body_bytes)
    app.add_middleware(BodyTimeout, seconds=args.body_timeout)
    app.add_middleware(HeadAsGet)
    app.add_middleware(HostCheck, allowed=args.allowed_hosts)  # the last added runs first

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        bad_json = [e for e in errors if e.get("type") == "json_invalid"]
        if bad_json:
            reason = (bad_json[0].get("ctx") or {}).get("error", "")
            return JSONResponse({"error": f"malformed JSON body: {reason}".rstrip(": ")}, status_code=400)
        # "top_k: Input should be a valid integer" (loc[0] is "body")
        # a field name may be anything the client sent, a lone surrogate too: escape what UTF-8 cannot encode
        reasons = printable(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors[:3])
        )
        detail = [
            {
                "loc": [printable(str(p)) if isinstance(p, str) else p for p in e["loc"]],
                "msg": printable(e["msg"]),
                "type": e["type"],
            }
            for e in errors
        ]
        return JSONResponse({"error": f"invalid request: {reasons}", "detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 413:  # BodyLimit
            return JSONResponse({"error": exc.detail}, status_code=413)
        if exc.status_code == 408:  # BodyTimeout: the rest of the body may still come, so the connection is closed
            return JSONResponse({"error": exc.detail}, status_code=408, headers={"connection": "close"})
        return JSONResponse(
            {"error": printable(f"{exc.detail}: {request.method} {request.url.path}")}, status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # never a plain-text 500 or a traceback
        error = classify_failure(exc)
        return JSONResponse({"error": error.message}, status_code=error.status)

    limits = {name: getattr(args, name) for name in ("max_texts", "max_text_length", "max_top_k", "rerank_candidates")}

    @app.get("/api/health", summary="Service status: model, collection, modes, reranker, limits (HEAD too)")
    def health():
        return {**service.health(), "limits": limits}

    @app.post("/api/embed", summary="Texts -> L2-normalised vectors of the recall model")
    def embed(request: EmbedRequest):
        if not request.texts:
            raise ApiError(422, "texts is empty: give at least one text")
        if len(request.texts) > args.max_texts:
            raise ApiError(422, f"{len(request.texts)} texts; the limit is {args.max_texts} per request (--max_texts)")
        for i, text in enumerate(request.texts):
            check_text(text, f"texts[{i}]")
        return service.embed(request.texts)

    def check_top_k(top_k):
        if not 1 <= top_k <= args.max_top_k:
            raise ApiError(422, f"top_k must be between 1 and {args.max_top_k} (--max_top_k), got {top_k}")

    def given_filters(request):
        return request.filters.model_dump(exclude_none=True) if request.filters else {}

    @app.post("/api/search", summary="Query -> top-K documents (dense, bm25 or hybrid recall, optional rerank)")
    def search(request: SearchRequest):
        check_text(request.query, "query")
        check_top_k(request.top_k)
        return service.search(request.query, request.top_k, request.mode, request.rerank, given_filters(request))

    @app.post("/api/more_like_this", summary="A stored paper -> the top-K papers like it (itself left out)")
    def more_like_this(request: MoreLikeThisRequest):
        check_top_k(request.top_k)
        return service.more_like_this(request.id, request.top_k, given_filters(request))

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


@entry_point
def main(argv=None):
    args = parse_args(argv)
    config = load_config(args)
    import uvicorn

    start = time.time()
    service = SearchService(args, config)
    try:
        app = create_app(service, args)
        logger.info(
            f"loaded {service.model_name} (dim {service.dim}) and collection {config.collection} "
            f"({service.documents} documents, modes {', '.join(service.modes)}, default {service.default_mode}"
            f"{', reranker ' + service.reranker_name if service.reranker else ', no reranker'}) in "
            f"{time.time() - start:.1f}s; serving http://{args.host}:{args.port}/"
        )
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            logger.warning(
                f"listening on {args.host}: anyone who can reach this address can use the service (no authentication)"
            )
        # uvicorn re-raises SIGTERM after its graceful shutdown: exit through `finally` so Milvus is closed
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        if "*" not in args.allowed_hosts and args.host in ANY_ADDRESS:
            logger.warning(
                f"requests must name one of {', '.join(sorted(args.allowed_hosts))} in their Host header: "
                "give the names clients use with --allowed_hosts (or * for any)"
            )
        protocol = guarded_protocol(args.header_timeout, args.max_connections)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, http=protocol)
    except KeyboardInterrupt:  # Ctrl-C, re-raised by uvicorn the same way
        pass
    finally:
        service.close()
        logger.info("web service stopped, Milvus connection closed")


if __name__ == "__main__":
    main()
