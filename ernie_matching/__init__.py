"""ERNIE-Gram pairwise reranker: the second stage of the search (recall -> rerank)."""
