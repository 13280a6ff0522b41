"""One source for every training recipe (recipes/*.yml): the pipeline's stages and the stage scripts in
scripts/ run the same command lines for the same inputs, for the offline and the PaddleNLP recipe.

Both sides are asked for their commands without running them (the pipeline's --dry_run --verbose, the
scripts' DRY_RUN=1), with the stage scripts given the pipeline's output directory and inputs; the commands are
compared argument by argument (not the interpreter's path)."""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))  # the pipeline's own modules live beside it
from recipe import Recipe, RecipeError  # noqa: E402

ONLINE = {"ernie": "ernie-1.0", "ernie-gram": "ernie-gram-zh"}  # PaddleNLP names: only command lines are built here


def pipeline_commands(out, recipe):
    """stage -> [argv without the interpreter, ...] of the pipeline's dry run on the bundled sample."""
    online = (
        ["--ernie_model", ONLINE["ernie"], "--ernie_gram_model", ONLINE["ernie-gram"]] if recipe == "paddlenlp" else []
    )
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
            *online,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    commands, stage = {}, None
    for line in result.stdout.splitlines():
        if match := re.match(r"^\[\d+/\d+\] (\w+): would run", line):
            stage = match.group(1)
        elif line.startswith("        $ ") and stage:
            commands[stage] = [shlex.split(cmd)[1:] for cmd in line[len("        $ ") :].split(" && ")]
    assert {"pretrain_ernie", "simcse", "inbatch", "train_reranker"} <= set(commands), result.stdout
    return commands


def script_commands(script, out, **env):
    """[argv without the interpreter, ...] that a stage script prints under DRY_RUN=1."""
    env = dict(
        os.environ,
        DRY_RUN="1",
        DATA_DIR="data/sample",
        OUTPUT_DIR=str(out),
        BUDGET="smoke",
        PYTHON=sys.executable,
        **env,
    )
    result = subprocess.run(
        ["bash", f"scripts/{script}"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert lines, result.stdout
    return [shlex.split(line)[1:] for line in lines]


@pytest.mark.parametrize("recipe", ["offline", "paddlenlp"])
def test_stage_scripts_run_the_pipelines_commands(tmp_path, recipe):
    out = tmp_path / "out"
    expected = pipeline_commands(out, recipe)
    online = recipe == "paddlenlp"
    domain_ernie, domain_gram = (
        str(out / "pretrain" / "ernie" / "final"),
        str(out / "pretrain" / "ernie-gram" / "final"),
    )
    train_model = str(out / "split" / "train_model.csv")

    # domain pretraining: bootstrap (offline) -> data -> both backbones; online, one backbone a call
    if online:
        for kind in ("ernie", "ernie-gram"):
            got = script_commands("run_domain_pretrain.sh", out, MODEL=ONLINE[kind], MODEL_TYPE=kind, RECIPE=recipe)
            stage = "pretrain_ernie" if kind == "ernie" else "pretrain_ernie_gram"
            data = [cmd for cmd in expected["pretrain_data"] if ONLINE[kind] in cmd]
            assert got == data + expected[stage]
    else:
        got = script_commands("run_domain_pretrain.sh", out)
        assert (
            got
            == expected["bootstrap"]
            + expected["pretrain_data"]
            + expected["pretrain_ernie"]
            + expected["pretrain_ernie_gram"]
        )

    assert script_commands("train_simcse.sh", out, MODEL=domain_ernie, RECIPE=recipe) == expected["simcse"]

    got = script_commands(
        "train_inbatch_negative.sh",
        out,
        MODEL=domain_ernie,
        RECIPE=recipe,
        TRAIN_FILE=train_model,
        INIT_FROM_CKPT=str(out / "simcse" / "domain" / "model_final"),
    )
    assert got == expected["hard_negatives"] + expected["inbatch"]

    got = script_commands(
        "recall_evaluate.sh",
        out,
        MODEL=domain_ernie,
        RECIPE=recipe,
        PARAMS_PATH=str(out / "inbatch" / "domain_simcse" / "model_final"),
    )
    final_model = [
        cmd
        for cmd in expected["recall_eval"]
        if "domain_simcse_inbatch" in " ".join(cmd) and "recall/dev.csv" in " ".join(cmd)
    ]
    assert got == final_model and len(final_model) == 2

    # the reranker, given the pipeline's recall lists (the pipeline makes the training one with query.py)
    got = script_commands(
        "train_ernie_matching.sh",
        out,
        BACKBONE=domain_gram,
        RECIPE=recipe,
        TRAIN_FILE=train_model,
        TRAIN_RECALL=str(out / "milvus" / "train_recall_hybrid.txt"),
        DEV_RECALL=str(out / "milvus" / "dev_recall_hybrid.txt"),
    )
    rerank_data = [cmd for cmd in expected["rerank_data"] if cmd[0] != "search/query.py"]
    assert got == rerank_data + expected["train_reranker"] + expected["export_reranker"] + expected["reranker_auc"][:1]
    # and the two recipes really differ where they should
    reranker = expected["train_reranker"][0]
    assert ("--loss" in reranker and str(out / "sort" / "pseudo_pairwise.csv") in reranker) == (not online)


def test_pipeline_stage_list_follows_its_options():
    def stages(*flags):
        result = subprocess.run(
            [sys.executable, "scripts/pipeline.py", "--list_stages", *flags],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    plain, ablation = stages(), stages("--ablation")
    assert plain[0] == "bootstrap" and plain[-1] == "report" and len(set(plain)) == len(plain)
    assert [s for s in ablation if not s.startswith("ablation_")] == plain and len(ablation) == len(plain) + 3
    assert "bootstrap" not in stages("--ernie_model", "ernie-1.0", "--ernie_gram_model", "ernie-gram-zh")
    bad = subprocess.run(
        [sys.executable, "scripts/pipeline.py", "--dry_run", "--skip", "ablation_simcse_only", "--budget", "smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "unknown stage 'ablation_simcse_only'" in bad.stderr


def test_recipe_values_by_budget_and_preset_and_clear_errors(tmp_path):
    sample, full = Recipe("offline", "sample", "mini"), Recipe("offline", "full", "small")
    assert sample.flags("simcse")[:6] == ["--output_emb_size", "0", "--max_steps", "30", "--batch_size", "32"]
    assert full.flags("simcse")[:6] == ["--output_emb_size", "128", "--max_steps", "150", "--batch_size", "64"]
    assert "--freeze_word_embeddings" in sample.flags(
        "pretrain_ernie"
    ) and "--freeze_word_embeddings" not in sample.flags("pretrain_ernie_gram")
    assert sample.option("train_reranker", "pseudo_queries") is True
    assert Recipe("paddlenlp", "full", "mini").option("train_reranker", "pseudo_queries") is False
    with pytest.raises(RecipeError, match="no stage 'nope'"):
        sample.flags("nope")
    with pytest.raises(RecipeError, match="budget 'huge'"):
        Recipe("offline", "huge", "mini")
    custom = tmp_path / "mine.yml"
    custom.write_text("stages:\n  simcse:\n    flags:\n      max_steps: {smoke: 4, sample: 30}\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"simcse.flags.max_steps: expected a value for budget full"):
        Recipe(str(custom), "full", "mini").flags("simcse")
    result = subprocess.run(
        [sys.executable, "scripts/recipe.py", "flags", "simcse", "--recipe", "nonexistent"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "recipe 'nonexistent'" in result.stderr


@pytest.mark.slow
def test_stage_scripts_chain_on_the_sample(tmp_path):
    """The stage scripts for real, one after the other at the smoke budget: each finds the previous one's
    outputs in OUTPUT_DIR (the pipeline's layout) and leaves what the next one needs. On a copy of the sample with
    fewer queries (12 dev, 48 training: what is checked is the chain, not the figures; tests/test_pipeline.py runs the
    same commands on the whole sample), so the recall and the reranking score a fifth of the pairs."""
    data = tmp_path / "data"
    shutil.copytree(os.path.join(ROOT, "data", "sample"), data)
    for name, keep in (("dev.csv", 12), ("train.csv", 48)):
        pairs = data / "recall" / name
        with open(pairs, encoding="utf-8") as f:
            lines = f.readlines()[:keep]
        with open(pairs, "w", encoding="utf-8") as f:
            f.writelines(lines)
    out = tmp_path / "stages"
    env = dict(os.environ, DATA_DIR=str(data), OUTPUT_DIR=str(out), BUDGET="smoke", PYTHON=sys.executable)
    for script in (
        "run_domain_pretrain.sh",
        "train_simcse.sh",
        "train_inbatch_negative.sh",
        "recall_evaluate.sh",
        "train_ernie_matching.sh",
        "rerank_evaluate.sh",
    ):
        result = subprocess.run(
            ["bash", f"scripts/{script}"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600
        )
        assert result.returncode == 0, f"{script}: " + result.stdout[-1500:] + result.stderr[-1500:]
    inbatch_log = (out / "inbatch" / "domain_simcse" / "training_args.json").read_text(encoding="utf-8")
    assert str(out / "simcse" / "domain" / "model_final") in inbatch_log  # warm-started from the SimCSE it trained
    assert (out / "hard_negatives.tsv").stat().st_size > 0
    metrics = (out / "metrics" / "domain_simcse_inbatch.json").read_text(encoding="utf-8")
    assert '"recall@10"' in metrics
    assert (out / "export" / "reranker" / "inference.pdiparams").is_file()
    assert "auc" in (out / "reranker_auc.jsonl").read_text(encoding="utf-8")
    assert len((out / "rerank" / "bm25" / "recall_result.txt").read_text(encoding="utf-8").splitlines()) > 0
