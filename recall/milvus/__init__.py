"""Milvus recall: batch feature extraction to .npy, a Milvus collection (Milvus Lite file or a server by
URI) with dense + BM25 fields, and its dense / bm25 / hybrid legs (search.py). The query command and the web
service are search/query.py and search/web/, both over search.system.SearchSystem."""
