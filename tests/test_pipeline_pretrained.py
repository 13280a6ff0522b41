"""The pipeline's pretrained start end to end on the bundled sample (--budget smoke --start pretrained).

A file of its own, apart from tests/test_pipeline.py's smoke pipeline: the two longest runs of the suite, so that
`make test`'s two workers (pytest-xdist, --dist loadfile: one file a worker) run them side by side."""

import json
import os
import subprocess
import sys

import pytest
from test_pipeline import ROOT, said

pytestmark = pytest.mark.slow


def test_pretrained_start_runs_end_to_end(tmp_path):
    """--start pretrained (recipes/pretrained.yml) on the sample, smoke budget: the converted multilingual-e5-small
    is every recall stage's start (no MLM, no SimCSE by the recipe), the reranker's ERNIE-Gram is bootstrapped,
    the zero-shot and fine-tuned variants are scored from their corpus embeddings, and the query CLI serves it.
    rerank_eval is left out: its command is the from-scratch run's, whatever the start (pipeline_run runs it)."""
    out = tmp_path / "pretrained"
    cmd = ["bash", "scripts/run_pipeline.sh", "--output_dir", str(out), "--budget", "smoke", "--start", "pretrained"]
    cmd += ["--skip", "rerank_eval"]
    env = dict(os.environ, PYTHON=sys.executable, NS_PROGRESS_EVERY="5")
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stdout = result.stdout
    for stage in ("convert", "variant_embeddings", "inbatch", "recall_eval", "fit_ranking", "system_eval"):
        assert said(stdout, stage) == "run", stage
    for stage in ("crossfit_hard_negatives", "crossfit_inbatch1", "crossfit_export"):
        assert said(stdout, stage) == "run", stage  # the recipe's crossfit_folds at the smoke budget: 2
    assert said(stdout, "crossfit_inbatch2") is None
    ranking = json.load(open(out / "export" / "ranking" / "ranking.json"))
    # cross-fitted: the neural tier fits on every training query, each scored by a recall model that never saw it
    # (several fold models: tests/test_search_system.py::test_cross_fitting_scores_each_fold_by_its_own_model...)
    assert ranking["queries"]["heldout"] == ranking["queries"]["train"] and len(ranking["fold_models"]) == 1
    assert ranking["fold_models"][0] != ranking["fitted_with"]["recall_model"]
    assert ranking["fitted_with"]["reranker"] is None
    # the recipe's fit_ranking.dense_candidates at the smoke budget, 0 and 10: the joint set over the united pool too
    united = [row for row in ranking["cross_validation"] if row["row"].endswith(", + dense top 10")]
    assert len(united) == 1 and united[0]["queries"] == ranking["queries"]["train"]
    for stage in ("pretrain_ernie", "simcse"):
        assert said(stdout, stage) is None, stage  # the recipe leaves them out
    assert said(stdout, "rerank_eval") == "skipped"
    conversion = json.load(open(out / "pretrained" / "e5-small" / "conversion.json"))
    assert conversion["pretrained"] and conversion["source_layers"] == [0, 1]  # the smoke budget's first 2
    assert conversion["vocab_size"] < 30000 < conversion["source_vocab_size"]
    assert not (out / "bootstrap" / "ernie").exists() and (out / "bootstrap" / "ernie-gram" / "vocab.txt").exists()
    for name in ("pretrained_zero_shot", "pretrained_inbatch"):
        for metrics in ("metrics", "metrics_fit"):
            scores = json.load(open(out / metrics / f"{name}.json"))
            assert 0 <= scores["recall@1"] <= scores["recall@50"] <= 100
    served = json.load(open(out / "metrics_fit" / "milvus_dense.json"))  # the dense leg from Milvus, held out
    assert 0 <= served["recall@1"] <= served["recall@50"] <= 100
    export_tokenizer = json.load(open(out / "export" / "recall" / "tokenizer_config.json"))
    assert export_tokenizer["query_prefix"] == "query: " and export_tokenizer["doc_prefix"] == "passage: "
    # the recipe's export.query_drop_layers at the smoke budget: queries without the second layer, the served model's
    # and the fold model's alike (the ranking fits on the cosines it is served)
    for export in (out / "export" / "recall", out / "crossfit" / "fold1" / "export"):
        info = json.load(open(export / "export_info.json"))
        assert info["query_drop_layers"] == [1] and (export / "query" / "inference.pdiparams").is_file(), export
    assert "pretrained multilingual-e5-small, converted, zero-shot" in (out / "report.md").read_text(encoding="utf-8")
    assert "mode: system" in stdout and "rank\tid\tscore\ttext" in stdout
