"""One search path (issue 29): SearchSystem runs every query; the command line (search/query.py) and the web service
(search/web/) only translate, so they import nothing that searches Milvus or ranks. Fast: reads source files only."""

import ast
import glob
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADAPTERS = ["search/query.py", "search/web_service.py", *sorted(glob.glob("search/web/*.py", root_dir=REPO))]
# what runs a search or a ranking, or loads a model: SearchSystem's business, not an adapter's
SEARCH_LOGIC = (
    "pymilvus",
    "milvus_lite",
    "lightgbm",
    "paddle",
    "paddlenlp",
    "recall.milvus.search",
    "recall.milvus.store",
    "recall.milvus.inference",
    "search.features",
    "search.learn",
    "search.ranking",
    "ernie_matching",
    "ns_common.predictor",
)


def imports(path):
    """Every module a file imports, at any depth (function-local imports too)."""
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


# a flag check: is --reranker_dir a reranker at all (read before anything loads)
FLAG_CHECKS = {"ernie_matching.reranker", "ernie_matching.reranker.reranker_kind"}


def test_the_cli_and_the_web_service_hold_no_search_logic():
    assert len(ADAPTERS) >= 8  # query.py, the web_service shim, the web package's modules
    for path in ADAPTERS:
        bad = sorted(m for m in imports(path) - FLAG_CHECKS if m.startswith(SEARCH_LOGIC) or m.endswith(".Ranking"))
        assert not bad, f"{path} imports {bad}: searching and ranking belong to search/system.py (SearchSystem)"
    for path in ("search/query.py", "search/web/routes.py", "search/web/server.py"):  # each call goes through it
        assert "search.system.SearchSystem" in imports(path), path
    for path in ADAPTERS:  # nor reach into the system's parts: its searcher (Milvus), its ranking
        with open(os.path.join(REPO, path), encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        parts = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} & {"searcher", "ranking"}
        assert not parts, f"{path} uses {sorted(parts)}: call SearchSystem instead"


def test_the_web_package_is_small_modules_without_private_imports():
    for path in glob.glob("search/web/*.py", root_dir=REPO):
        with open(os.path.join(REPO, path), encoding="utf-8") as f:
            assert len(f.read().splitlines()) < 300, path
    offenders = []
    for path in glob.glob("**/*.py", root_dir=REPO, recursive=True):
        if path.startswith((".venv", "build", "output")):
            continue
        if any(m.startswith("h11._") for m in imports(path)):
            offenders.append(path)
    assert not offenders, f"imports of h11's private modules: {offenders}"
