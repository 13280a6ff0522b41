"""Recall stage: vector search over the corpus (recall/milvus: feature extraction, Milvus index, query CLI)."""
