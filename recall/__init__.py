"""Recall stage: vector search over the corpus (recall/milvus: feature extraction, Milvus index, query CLI)."""

import ns_common  # noqa: F401  (first: its warning filters quiet paddle's import in every entry point below)
