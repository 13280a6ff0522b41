"""The project as a library: each error class of ns_common.errors raised in-process by the public API (no
SystemExit, no exit code), and the interpreter carries on: the next call after each error works.

The pipeline-shaped directory here is what SearchSystem.from_pipeline reads: the sample's paper records in Milvus Lite
at <dir>/milvus/neural_search.db (random vectors: only BM25 is searched), no models, no fitted ranking: the session's
papers_pipeline (tests/conftest.py)."""

import numpy as np
import paddle
import pytest

from ns_common.errors import (
    BadInputError,
    ConfigError,
    MilvusUnavailableError,
    ModelMismatchError,
    NeuralSearchError,
    NonFiniteError,
)


@pytest.fixture(scope="module")
def pipeline_dir(papers_pipeline):
    return papers_pipeline


def test_each_error_class_is_raised_in_process_and_the_interpreter_carries_on(pipeline_dir, tmp_path, monkeypatch):
    from ns_common.checkpoint import check_finite_weights, load_checkpoint, save_checkpoint
    from recall.milvus import store
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher, SearchError
    from search import SearchSystem

    # ConfigError: the system's fitted ranking is missing; the message names it and the command that makes it
    with pytest.raises(ConfigError, match=r"no fitted ranking at .*export/ranking: run the pipeline \(make run"):
        SearchSystem.from_pipeline(pipeline_dir)
    with pytest.raises(ConfigError, match="no pipeline output directory"):
        SearchSystem.from_pipeline(str(tmp_path / "nothing"))

    with SearchSystem.from_pipeline(pipeline_dir, mode="bm25") as system:
        # BadInputError: an empty query, top_k out of range (SearchError is one, and still a ValueError)
        for query, top_k in (("", 5), ("   ", 5), ("语言 文化", 0)):
            with pytest.raises(BadInputError) as error:
                system.search(query, top_k=top_k)
            assert isinstance(error.value, SearchError) and isinstance(error.value, ValueError)
        # ConfigError: no recall model in this directory to encode with
        with pytest.raises(ConfigError, match=r"no recall model at .*export/recall"):
            system.encode(["语言"])
        results = system.search("语言 文化 差异", top_k=3)  # and the next call works
        assert len(results) == 3 and all(hit.text and hit.id.startswith("sample-") for hit in results)
        assert results.timings_ms["total"] > 0

    # MilvusUnavailableError: nothing listens there (exit code 1 for the command line)
    monkeypatch.setattr(store, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(MilvusUnavailableError, match="cannot connect to Milvus at http://127.0.0.1:1") as error:
        MilvusSearcher(load_config(uri="http://127.0.0.1:1"))
    assert error.value.exit_code == 1

    # ModelMismatchError: a checkpoint of another dimension; NonFiniteError: a model with NaN weights
    paddle.seed(0)
    save_checkpoint(paddle.nn.Linear(4, 8), None, str(tmp_path / "ckpt"))
    with pytest.raises(ModelMismatchError, match="does not fit the model"):
        load_checkpoint(paddle.nn.Linear(4, 16), str(tmp_path / "ckpt"))
    broken = paddle.nn.Linear(4, 8)
    broken.weight.set_value(np.full((4, 8), np.nan, dtype=np.float32))
    with pytest.raises(NonFiniteError, match="parameter .* holds NaN/inf") as error:
        check_finite_weights(broken, "the model")
    assert error.value.exit_code == 3

    # every one of them is a NeuralSearchError, and the interpreter is alive: the API still answers
    classes = (BadInputError, ConfigError, MilvusUnavailableError, ModelMismatchError, NonFiniteError)
    assert all(issubclass(c, NeuralSearchError) for c in classes)
    with SearchSystem.from_pipeline(pipeline_dir, mode="bm25") as system:
        assert system.search("语言", top_k=1)


def test_needed_components_says_which_mode_needs_what():
    from search import needed_components

    class Ranking:
        uses_dense, uses_reranker = True, False

    assert needed_components("bm25") == set() and needed_components("by_id") == set()
    assert needed_components("dense") == needed_components("hybrid") == {"encoder"}
    assert needed_components("bm25", rerank=True) == {"reranker"}
    assert needed_components("system") == {"ranking"}
    assert needed_components("system", Ranking()) == {"ranking", "encoder"}
    with pytest.raises(ConfigError):
        needed_components("fuzzy")
