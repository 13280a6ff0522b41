"""The end-to-end pipeline on the bundled sample with minimal steps (--budget smoke): every stage runs,
every expected output exists, the report parses, and a re-run reuses every stage."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))  # the pipeline's own modules live beside it
from stage_progress import StageProgress  # noqa: E402

pytestmark = pytest.mark.slow


def said(stdout, stage):
    """What the pipeline's screen output says about a stage: 'run', 'reused', 'skipped', 'would run', ...; None if nothing."""
    for line in stdout.splitlines():
        match = re.fullmatch(rf"\[\d+/\d+\] {re.escape(stage)}(?:: ([a-z ]+?))?(?: \(.*\))?", line)
        if match:
            return match.group(1) or "run"
    return None


def copy_pipeline_output(source, target):
    """A copy of a finished pipeline output directory that the pipeline reuses as its own: each finished-marker
    (.done/<stage>, the stage's command) names the copy's paths, as if the stages had run there."""
    shutil.copytree(source, target)
    done = os.path.join(target, ".done")
    for name in os.listdir(done):
        with open(os.path.join(done, name), encoding="utf-8") as f:
            command = f.read()
        with open(os.path.join(done, name), "w", encoding="utf-8") as f:
            f.write(command.replace(str(source), str(target)))


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    cmd = ["bash", "scripts/run_pipeline.sh", "--output_dir", str(out), "--budget", "smoke"]
    env = dict(
        os.environ, PYTHON=sys.executable, NS_PROGRESS_EVERY="1"
    )  # a progress line every second (output is a pipe)
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result.stdout + result.stderr, env


def test_screen_output_numbers_stages_shows_progress_and_no_library_warnings(pipeline_run):
    out, output, _ = pipeline_run
    n = len(
        subprocess.run(
            [sys.executable, "scripts/pipeline.py", "--list_stages"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
    )
    assert re.search(rf"^\[1/{n}\] bootstrap$", output, re.M) and re.search(rf"^\[\d+/{n}\] report$", output, re.M)
    assert re.search(r"^ {8}\d+s \| ", output, re.M)  # live progress lines (elapsed | what the stage reports)
    assert re.search(r"^ {8}done in [\d.]+s, training [\d.]+(step/s|s/step)$", output, re.M)  # a training stage's rate
    assert re.search(r"^pipeline finished in \w+: \d+ stages run, 0 reused, 0 skipped; longest: ", output, re.M)
    assert "--train_set_file" not in output  # full commands go to the logs (and --verbose)
    with open(os.path.join(out, "logs", "simcse.log"), encoding="utf-8") as f:
        log = f.read()
    assert log.startswith("$ ") and "simcse/train.py --train_set_file" in log and "4/4" in log
    for warning in ("No ccache found", "Setuptools is replacing distutils"):  # silenced where they are raised
        assert warning not in output and warning not in log


def test_dry_run_says_what_would_run_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "scripts/pipeline.py",
            "--output_dir",
            str(out),
            "--budget",
            "smoke",
            "--dry_run",
            "--verbose",
            "--skip",
            "report",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        said(result.stdout, "bootstrap") == "would run" and "(no finished run in the output directory)" in result.stdout
    )
    assert said(result.stdout, "report") == "skipped"
    assert "$ " + sys.executable + " ns_common/bootstrap.py" in result.stdout  # --verbose: the commands
    assert re.search(
        r"^dry run: \d+ stages would run, 0 would be reused, 1 skipped; nothing was run$", result.stdout, re.M
    )
    assert not out.exists()


def test_progress_from_tqdm_bars_and_step_lines():
    buffer = io.StringIO()  # a real tqdm bar, as a stage writes it to a pipe
    bar = tqdm(total=100, desc="training", unit="step", file=buffer, mininterval=0, ncols=80)
    bar.update(45)
    progress = StageProgress()
    progress.feed(buffer.getvalue())
    assert re.fullmatch(r"\d+s \| training 45/100 \| [\d.]+(step/s|s/step) \| ETA [\d:]+", progress.status()), (
        progress.status()
    )
    bar.update(55)
    bar.close()
    progress.feed(buffer.getvalue()[-200:] + "\n[2026-12-01 14:42:37] [   INFO] trained 100 steps\n")
    assert progress.status().endswith("| trained 100 steps") and progress.throughput().startswith("training ")
    # pretraining's log lines when its output is not a terminal: rate and ETA measured from them
    steps = StageProgress()
    steps.feed("[2026-12-01 14:42:36] [   INFO] step 10/300: loss 9.1525\n")
    time.sleep(0.3)
    steps.feed("[2026-12-01 14:42:37] [   INFO] step 20/300: loss 9.0\n")
    assert re.search(r"\| step 20/300 \| [\d.]+step/s \| ETA \d+s$", steps.status()), steps.status()


def test_every_stage_output_exists(pipeline_run):
    out, stdout, _ = pipeline_run
    expected = [
        "bootstrap/ernie/config.json",
        "bootstrap/ernie-gram/vocab.txt",
        "pretrain/ernie/final/model_state.pdparams",
        "pretrain/ernie/pretrain_summary.json",
        "pretrain/ernie-gram/final/config.json",
        "simcse/domain/model_final/model_state.pdparams",
        "hard_negatives.tsv",
        "inbatch/domain_simcse/model_final/model_state.pdparams",
        "export/recall/inference.json",
        "export/recall/inference.pdiparams",
        "milvus/corpus_embedding.npy",
        "milvus/neural_search.db",
        "sort/train_pairwise.csv",
        "sort/dev_pairwise.csv",
        "reranker/model_final/model_state.pdparams",
        "export/reranker/inference.pdiparams",
        "reranker_auc.jsonl",
        "timings.json",
        "split/train_model.csv",
        "split/train_fit.csv",
        "export/ranking/ranking.json",
        "export/ranking/lexical_stats.json",
        "metrics/milvus_system.json",
        "metrics/bm25_reference.json",
        "report.md",
        "report.json",
        "recall_at_k.png",
    ]
    missing = [p for p in expected if not os.path.exists(os.path.join(out, p))]
    assert not missing
    with open(os.path.join(out, "recall_at_k.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # the closing sample query went through the default search path and printed ranked hits
    assert "mode: system" in stdout and "rank\tid\tscore\ttext" in stdout


def readme_api_example():
    """The Python block of the README's "Then search what `make run` built" section."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("### Then search what `make run` built") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_api_example_runs_on_what_the_pipeline_built(pipeline_run):
    out, _, env = pipeline_run
    code = readme_api_example()
    assert 'from_pipeline("output/pipeline/sample")' in code and "except NeuralSearchError" in code
    code = code.replace('"output/pipeline/sample"', repr(str(out)))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    hits = [line for line in lines if re.match(r"^\S+ -?[\d.]+(e-?\d+)? \S", line)]  # paper id, score, title
    assert len(hits) == 5 and re.fullmatch(r"\(1, \d+\)", lines[-1]), result.stdout  # five hits, the vectors' shape
    # and the example's except branch: a directory the pipeline never wrote is one line naming the command
    result = subprocess.run(
        [sys.executable, "-c", code.replace(repr(str(out)), repr(str(out / "nothing")))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0 and "run the pipeline (make run" in result.stdout, (
        result.stdout + result.stderr[-2000:]
    )


def test_report_parses_and_holds_every_row(pipeline_run):
    out, _, _ = pipeline_run
    with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    rows = report["recall"]
    for name in (
        "domain_simcse",
        "domain_simcse_inbatch",
        "milvus_dense",
        "milvus_bm25",
        "milvus_hybrid",
        "milvus_dense_rerank",
        "milvus_bm25_rerank",
        "milvus_hybrid_rerank",
        "bm25_reference",
        "milvus_system",
    ):
        assert name in rows, name
        m = rows[name]
        assert m["queries"] == 60
        assert 0 <= m["recall@1"] <= m["recall@5"] <= m["recall@10"] <= m["recall@50"] <= 100
    # reranking only reorders the 50 recalled docs: Recall@50 cannot change
    for mode in ("dense", "bm25", "hybrid"):
        assert rows[f"milvus_{mode}_rerank"]["recall@50"] == rows[f"milvus_{mode}"]["recall@50"]
    # the system reorders BM25's top 50 only
    assert rows["milvus_system"]["recall@50"] == rows["milvus_bm25"]["recall@50"]
    ranking = report["ranking"]
    assert ranking["queries"] == {"train": 240, "heldout": 60} and ranking["chosen"] in ("bm25", "lexical", "neural")
    tried = {r["row"] for r in ranking["cross_validation"]}
    assert {"BM25 alone", "lexical: every lexical feature", "neural: + dense cosine + reranker"} <= tried
    assert sum(r["chosen"] for r in ranking["cross_validation"]) == 2  # one row served in each tier (lexical, neural)
    with open(os.path.join(out, "export", "ranking", "ranking.json"), encoding="utf-8") as f:
        fitted = json.load(f)  # the smoke budget's fit (recipes/*.yml fit_ranking): 3 folds, no hyperparameter search
    assert fitted["folds"] == 3 and fitted["grid"] == "first"
    from search.fit import tier_grids
    from search.learn import parameter_grid

    first = [parameter_grid(grid)[0] for grid in tier_grids("first").values()]
    assert all(r["params"] in first for r in fitted["cross_validation"] if r["params"])
    assert set(report["reranker_auc"]) == {"ERNIE-Gram reranker", "recall model cosine"}
    assert all(0 <= v["auc"] <= 1 for v in report["reranker_auc"].values())
    assert report["pretrain"]["ernie"]["steps"] == 4
    assert report["machine"]["versions"]["paddle"].startswith("3.")
    assert set(report["timings"]) >= {
        "bootstrap",
        "pretrain_ernie",
        "simcse",
        "inbatch",
        "milvus_insert",
        "train_reranker",
        "rerank_eval",
    }
    with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
        text = f.read()
    assert "| BM25 in Milvus (char 1+2-grams): the lexical leg |" in text and "Reranker AUC" in text
    assert "## The learned ranking (cross-validated over the training queries; never dev)" in text
    assert (
        text.index("| BM25 reference (bm25s")
        < text.index("| **the system**")
        < text.index("| Domain pretrain + SimCSE |")
    )


def test_rerun_reuses_every_stage_and_from_redoes(pipeline_run):
    out, _, env = pipeline_run
    cmd = ["bash", "scripts/run_pipeline.sh", "--output_dir", str(out), "--budget", "smoke"]
    again = subprocess.run(cmd + ["--from", "report"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert said(again.stdout, "bootstrap") == "reused" and said(again.stdout, "rerank_eval") == "reused"
    assert said(again.stdout, "report") == "run"
    dry = subprocess.run(
        cmd + ["--dry_run", "--from", "rerank_eval"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert said(dry.stdout, "train_reranker") == "would be reused" and said(dry.stdout, "rerank_eval") == "would run"
    assert "(--from rerank_eval)" in dry.stdout and "sample query" not in dry.stdout


def test_redoing_pretraining_starts_afresh(pipeline_run):
    """--from on a finished pretraining stage trains again from the bootstrap, not from its old model_last."""
    out, _, env = pipeline_run
    later = subprocess.run(
        [sys.executable, "scripts/pipeline.py", "--list_stages"], cwd=ROOT, capture_output=True, text=True, env=env
    ).stdout.split()
    later = later[later.index("pretrain_ernie_gram") + 1 :]
    cmd = [
        "bash",
        "scripts/run_pipeline.sh",
        "--output_dir",
        str(out),
        "--budget",
        "smoke",
        "--from",
        "pretrain_ernie_gram",
        "--skip",
        *later,
    ]
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert said(again.stdout, "pretrain_ernie") == "reused" and said(again.stdout, "pretrain_ernie_gram") == "run"
    with open(os.path.join(out, "logs", "pretrain_ernie_gram.log"), encoding="utf-8") as f:
        log = f.read()
    assert "pretrained 2 steps" in log and "resuming from" not in log


def test_failing_stage_names_stage_command_and_log(tmp_path):
    data = tmp_path / "data"
    subprocess.run(["cp", "-r", os.path.join(ROOT, "data", "sample"), str(data)], check=True)
    # a pretraining corpus without a single usable document makes the data-tools stage fail
    (data / "pretrain" / "domain_corpus.txt").write_bytes(b"\xff\xfe\n")
    out = tmp_path / "out"
    result = subprocess.run(
        ["bash", "scripts/run_pipeline.sh", "--data_dir", str(data), "--output_dir", str(out), "--budget", "smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHON=sys.executable),
        timeout=600,
    )
    assert result.returncode != 0
    assert "stage pretrain_data failed" in result.stderr
    assert "command: " in result.stderr and os.path.join(str(out), "logs", "pretrain_data.log") in result.stderr


def test_bad_data_dir_is_one_line_error(tmp_path):
    result = subprocess.run(
        ["bash", "scripts/run_pipeline.sh", "--data_dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHON=sys.executable),
        timeout=120,
    )
    assert result.returncode == 2
    assert "missing recall/train_unsupervised.csv" in result.stderr


def test_a_rebuilt_output_redoes_the_stages_that_read_it(pipeline_run):
    """A stage that runs again (here: its finished-marker is gone) makes every later stage given its outputs
    run again too, instead of reusing results computed from the old ones; the report always runs."""
    out, _, env = pipeline_run
    marker = os.path.join(out, ".done", "export_reranker")
    os.rename(marker, marker + ".moved")
    try:
        dry = subprocess.run(
            [sys.executable, "scripts/pipeline.py", "--output_dir", str(out), "--budget", "smoke", "--dry_run"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        os.rename(marker + ".moved", marker)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert (
        said(dry.stdout, "train_reranker") == "would be reused" and said(dry.stdout, "export_reranker") == "would run"
    )
    for stage in ("reranker_auc", "rerank_eval", "fit_ranking", "system_eval"):
        assert said(dry.stdout, stage) == "would run", stage
    assert f"its input {os.path.join(str(out), 'export', 'reranker')} was rebuilt in this run" in dry.stdout
    assert said(dry.stdout, "milvus_eval") == "would be reused" and said(dry.stdout, "report") == "would run"


def test_milvus_stages_every_mode_and_the_web_service_against_a_grpc_server(pipeline_run, tmp_path, capsys):
    """The search system needs BM25, which the Milvus 2.3.5 server lacks: against milvus-lite 2.5's engine served
    over gRPC (a Milvus >= 2.5 API), the pipeline's Milvus stages, query.py in every mode and the web service run
    with --uri http://127.0.0.1:PORT and give what the embedded engine gave."""
    from conftest import RunningService, request

    from recall.milvus.local_server import LiteEngineServer
    from search import query as query_cli

    out, _, env = pipeline_run
    copy = tmp_path / "pipeline"
    copy_pipeline_output(out, copy)  # the stages before Milvus are reused, not redone
    # the reranker's stages only read what the Milvus stages wrote (their search through gRPC: query.py below)
    reranker_stages = ["rerank_data", "train_reranker", "export_reranker", "reranker_auc", "rerank_eval"]
    with LiteEngineServer(str(tmp_path / "lite_server")) as server:
        cmd = [
            "bash",
            "scripts/run_pipeline.sh",
            "--output_dir",
            str(copy),
            "--budget",
            "smoke",
            "--milvus_uri",
            server.uri,
            "--skip",
            *reranker_stages,
        ]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        for stage in ("milvus_insert", "milvus_eval", "fit_ranking", "system_eval"):
            assert said(result.stdout, stage) == "run", stage
        assert said(result.stdout, "bootstrap") == said(result.stdout, "feature_extract") == "reused"
        with open(os.path.join(copy, "logs", "milvus_insert.log"), encoding="utf-8") as f:
            assert f"at {server.uri}: 500 entities" in f.read()
        embedded, served = (
            json.load(open(os.path.join(d, "report.json"), encoding="utf-8"))["recall"] for d in (out, copy)
        )
        for mode in (
            "milvus_dense",
            "milvus_bm25",
            "milvus_hybrid",
        ):  # the same engine, the same data: the same figures
            assert served[mode] == embedded[mode], mode
        assert served["milvus_system"]["queries"] == 60

        query = "语言 文化 差异"
        recall_export, reranker_export = (
            os.path.join(copy, "export", "recall"),
            os.path.join(copy, "export", "reranker"),
        )
        hits = {}
        for mode in ("dense", "bm25", "hybrid", "system"):  # the CLI in this process (its flags, its JSON output)
            flags = ["--reranker_dir", reranker_export] if mode == "system" else []
            query_cli.main(
                ["--model_dir", recall_export, "--query", query, "--mode", mode, "--top_k", "5", "--json"]
                + ["--uri", server.uri, *flags]
            )
            hits[mode] = [h["id"] for h in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["hits"]]
            assert len(hits[mode]) == 5, mode

        service = RunningService(
            str(tmp_path / "web_service.log"),
            "--model_dir",
            recall_export,
            "--reranker_dir",
            reranker_export,
            "--uri",
            server.uri,
        )
        try:
            status, health, _ = request(service.port, "GET", "/api/health")
            assert status == 200 and health["documents"] == 500 and "system" in health["modes"]
            for mode in ("bm25", "system"):
                status, answer, _ = request(
                    service.port, "POST", "/api/search", {"query": query, "top_k": 5, "mode": mode}
                )
                assert status == 200 and [h["id"] for h in answer["hits"]] == hits[mode], mode
        finally:
            service.stop()
