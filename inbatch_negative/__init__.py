"""In-batch negatives: supervised training of the semantic index model on query-doc pairs."""

import ns_common  # noqa: F401  (first: its warning filters quiet paddle's import in every entry point below)
