"""The search stage: the learned fine ranking of the search system (features.py: lexical-structure features;
learn.py: a LambdaMART re-ranker of BM25's top candidates; neither imports Milvus or paddle) and the search
system itself (system.py), the one-line Python API:

    from search import SearchSystem
    system = SearchSystem.from_pipeline("output/pipeline/sample")

SearchSystem (and Results, needed_components) are imported from search.system on first use, so importing
search.features stays light."""

_SYSTEM_NAMES = ("SearchSystem", "Results", "needed_components")


def __getattr__(name):
    if name in _SYSTEM_NAMES:
        from search import system

        return getattr(system, name)
    raise AttributeError(f"module 'search' has no attribute {name!r}")


__all__ = list(_SYSTEM_NAMES)
