"""Domain-adaptive pretraining of ERNIE / ERNIE-Gram: whole-word n-gram MLM + sentence order."""

import ns_common  # noqa: F401  (first: its warning filters quiet paddle's import in every entry point below)
