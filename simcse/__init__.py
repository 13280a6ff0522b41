"""SimCSE: unsupervised training of the semantic index model (two dropout views of each text)."""

import ns_common  # noqa: F401  (first: its warning filters quiet paddle's import in every entry point below)
