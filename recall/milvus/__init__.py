"""Milvus recall: batch feature extraction to .npy, a Milvus collection (Milvus Lite file or a server by
URI) with dense + BM25 fields, dense / bm25 / hybrid search and the query CLI."""
