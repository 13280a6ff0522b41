"""The learned fine ranking of the search system: lexical-structure features (features.py) and a LambdaMART
re-ranker of BM25's top candidates (learn.py). Neither imports Milvus or paddle."""
