"""ERNIE-Gram pairwise reranker: the second stage of the search (recall -> rerank)."""

import ns_common  # noqa: F401  (first: its warning filters quiet paddle's import in every entry point below)
