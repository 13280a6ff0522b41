"""SimCSE: unsupervised training of the semantic index model (two dropout views of each text)."""
