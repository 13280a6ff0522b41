r"""HTTP service and web page over the search system: text -> vector, and query -> top-K documents.

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

Every request is one call of search.system.SearchSystem, loaded once at start and shared by the request threads
(it serialises the calls: the "wait" timing says how long a request queued). Bad requests get a 4xx JSON answer
{"error": "..."}; the service keeps serving. HEAD works wherever GET does.

Connections are guarded: --header_timeout and --body_timeout are total deadlines for a request's head and its body
(408), --max_connections the connections served at once (503 beyond), --allowed_hosts the Host header's names (400
for others: DNS rebinding), --max_body_bytes the body (413).

The package: settings.py (the flags, Settings), schemas.py (the request bodies), routes.py (the endpoints),
errors.py (JSON errors), timeouts.py (the two timeouts uvicorn lacks), app.py (create_app), server.py (main).
"""
