"""The search path in seconds (part of `make test-fast`): SearchSystem and the JSON API in-process (FastAPI's
TestClient) over the sample's 500 paper records in Milvus Lite, with random vectors and no model: BM25, more like
this, filters, the one check of each argument, a closed system, the HTTP layer's translation and its errors. The
models' modes, the ranking, the page and the connection guards: tests/test_search_system.py, test_web_service.py."""

import json
import os

import pytest
from conftest import sample_file

from ns_common.errors import BadInputError, NeuralSearchError


@pytest.fixture(scope="module")
def papers_db(papers_pipeline):
    """The session's papers_pipeline (tests/conftest.py): its database (keyed by the papers' own ids, the default) and
    the records it holds, by id."""
    with open(sample_file("milvus", "papers.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    return os.path.join(papers_pipeline, "milvus", "neural_search.db"), {r["id"]: r for r in records}


def line_id(records, line):
    """The own id of the paper at a line of the sample's papers.jsonl."""
    return list(records)[line]


@pytest.fixture(scope="module")
def system(papers_db):
    from recall.milvus.config import load_config
    from search.system import SearchSystem

    with SearchSystem.open(load_config(uri=papers_db[0]), mode="bm25") as opened:
        yield opened


@pytest.fixture(scope="module")
def client(system):
    from fastapi.testclient import TestClient

    from search.web.app import create_app
    from search.web.settings import Settings

    app = create_app(system, Settings(model_name="(none)", reranker_name=None, max_seq_length=64))
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


def first_dev_pair():
    with open(sample_file("recall", "dev.csv"), encoding="utf-8") as f:
        query, gold = f.readline().rstrip("\n").split("\t")
    return query, gold


def test_search_one_query_or_many_with_timings(system, papers_db):
    query, gold = first_dev_pair()
    results = system.search(query, top_k=5)
    assert len(results) == 5 and results[0].text == gold and results[0].matched
    assert [h.score for h in results] == sorted((h.score for h in results), reverse=True)
    assert set(results.timings_ms) == {"wait", "search", "total"}  # bm25: no model ran
    many = system.search([query, "  语言   文化 "], top_k=3)
    assert [[h.id for h in r] for r in many][0] == [h.id for h in results[:3]] and len(many[1]) == 3
    assert system.modes == ["bm25"] and system.mode == "bm25"


def test_a_filter_and_more_like_this(system, papers_db):
    _, records = papers_db
    query, _ = first_dev_pair()
    hits = system.search(query, top_k=10, filter="year >= 2015")
    assert hits and all(records[h.id]["year"] >= 2015 for h in hits)
    paper = line_id(records, 18)
    similar = system.more_like_this(paper, top_k=5, filter='category == "语言学"')
    assert len(similar) == 5 and paper not in [h.id for h in similar]
    assert all(records[h.id]["category"] == "语言学" for h in similar)
    assert similar.source["text"] == records[paper]["title"] and similar.mode == "hybrid"
    assert similar.source["id"] == paper and all(h.fields["paper_id"] == h.id for h in similar)
    assert system.paper(paper)["abstract"] == records[paper]["abstract"]
    with pytest.raises(BadInputError, match="no document with id 18 "):  # a line number is not a paper's id
        system.more_like_this(18)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s: s.search("", top_k=5), "empty query"),
        (lambda s: s.search(["语言", 3]), "query #2 is int, not text"),
        (lambda s: s.search(None), "the query is NoneType"),
        (lambda s: s.search("语言", top_k=0), "top_k must be between 1 and 16384"),
        (lambda s: s.search("语言", top_k=2.0), "top_k must be an integer"),
        # the searcher's own batch routes share its one request check
        (lambda s: s.searcher.search_batch(["语言"], top_k=0, mode="bm25"), "top_k must be between 1 and 16384"),
        (lambda s: s.searcher.bm25_with_vectors(["语言"], top_k=True), "top_k must be an integer, got bool"),
        (lambda s: s.searcher.bm25_with_vectors("语言", top_k=5), "queries must be a list of texts"),
        (lambda s: s.search("语言", mode="fuzzy"), "unknown mode 'fuzzy'"),
        (lambda s: s.search("语言", mode="dense"), "mode dense is not available: no recall model is loaded"),
        (lambda s: s.search("语言", mode="system"), "mode system is not available: no fitted ranking is loaded"),
        (lambda s: s.search("语言", rerank=True), "no reranker is loaded"),
        (lambda s: s.search("语言", filter=3), "the filter is int"),
        (lambda s: s.search("语言", filter="colour == 1"), "filter 'colour == 1': Milvus cannot evaluate it"),
        (lambda s: s.more_like_this(None), "a paper id is the paper's own id (text), got NoneType"),
        (lambda s: s.more_like_this(10**30), "no document with id 1000000000000000000000000000000"),
        (lambda s: s.more_like_this(-1), "no document with id -1"),
        (lambda s: s.paper(" "), "a paper id is the paper's own id (text), got str"),
        (lambda s: s.paper("x"), "no document with id x"),
        (lambda s: s.encode(None), "texts must be a string or a list of strings"),
        (lambda s: s.encode([1]), "texts[0] is int, not text (str)"),
    ],
)
def test_each_argument_is_checked_once_with_one_line(system, call, message):
    with pytest.raises(BadInputError) as error:
        call(system)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert system.search("语言 文化", top_k=1)  # still serving


def test_the_api_translates_requests_and_results(client, papers_db):
    _, records = papers_db
    query, gold = first_dev_pair()
    health = client.get("/api/health").json()
    assert health["documents"] == 500 and health["modes"] == ["bm25"] and health["default_mode"] == "bm25"
    assert set(health["facets"]["category"]) == {r["category"] for r in records.values()}
    data = client.post("/api/search", json={"query": query, "top_k": 3}).json()
    assert data["mode"] == "bm25" and data["hits"][0]["text"] == gold and [h["rank"] for h in data["hits"]] == [1, 2, 3]
    assert set(data["timings_ms"]) == {"wait", "milvus", "total"} and data["hits"][0]["highlights"]
    first = line_id(records, 0)
    assert data["hits"][0]["id"] in records and data["hits"][0]["fields"]["paper_id"] == data["hits"][0]["id"]
    filters = {"category": [records[first]["category"]], "year_min": 2010}
    data = client.post("/api/more_like_this", json={"id": first, "top_k": 5, "filters": filters}).json()
    assert (
        data["source"]["id"] == first
        and data["hits"]
        and all(
            records[h["id"]]["category"] == records[first]["category"] and records[h["id"]]["year"] >= 2010
            for h in data["hits"]
        )
    )
    assert client.get(f"/api/paper/{first}").json()["abstract"] == records[first]["abstract"]
    assert client.get("/").status_code == 200 and client.head("/api/health").status_code == 200


@pytest.mark.parametrize(
    "method,path,body,status,message",
    [
        ("POST", "/api/search", {"query": "风险", "top_k": "5"}, 422, "top_k: Input should be a valid integer"),
        ("POST", "/api/search", {"query": "风险", "topk": 3}, 422, "topk: Extra inputs are not permitted"),
        ("POST", "/api/search", {"query": "风险", "top_k": 101}, 422, "top_k must be between 1 and 100"),
        ("POST", "/api/search", {"query": "\u200b"}, 422, "query has no visible character"),
        ("POST", "/api/search", {"query": "风险", "mode": "dense"}, 400, "mode dense is not available"),
        ("POST", "/api/search", {"query": "风险", "filters": {"category": ["x"]}}, 422, "filters.category: unknown"),
        ("POST", "/api/search", b'{"query": ', 400, "malformed JSON body"),
        ("POST", "/api/more_like_this", {"id": 500}, 404, "no document with id 500 in collection literature_search"),
        ("POST", "/api/embed", {"texts": ["风险"]}, 500, "no recall model"),
        ("GET", "/api/search", None, 405, "Method Not Allowed: GET /api/search"),
        ("GET", "/api/paper/9999", None, 404, "no document with id 9999"),
    ],
)
def test_bad_requests_are_json_errors(client, method, path, body, status, message):
    raw = body if isinstance(body, bytes) else None
    headers = {"content-type": "application/json"}
    response = client.request(method, path, content=raw, json=None if raw else body, headers=headers)
    assert response.status_code == status and message in response.json()["error"], response.text
    assert client.get("/api/health").status_code == 200


def test_the_web_service_command_is_the_package():
    from search import web_service
    from search.web.server import main

    assert web_service.main is main and os.path.isfile(
        os.path.join(os.path.dirname(web_service.__file__), "web", "app.py")
    )


# last: closing a Milvus Lite database stops its server for every client of this process (the module's `system` too)
def test_a_closed_system_says_so(papers_db):
    from recall.milvus.config import load_config
    from search.system import SearchSystem

    uri, _ = papers_db
    system = SearchSystem.open(load_config(uri=uri), mode="bm25")
    system.close()
    system.close()  # twice is harmless
    for call in (lambda: system.search("语言"), lambda: system.more_like_this("sample-00001"), system.documents):
        with pytest.raises(NeuralSearchError, match="this SearchSystem is closed"):
            call()
