"""In-batch negatives: supervised training of the semantic index model on query-doc pairs."""
