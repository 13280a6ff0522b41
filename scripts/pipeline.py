"""The whole chain in one command: bootstrap -> domain pretraining -> SimCSE -> in-batch negatives ->
export -> feature extraction -> Milvus insert -> recall evaluation (dense / BM25 / hybrid) -> reranker
data mining -> ERNIE-Gram training -> reranking -> report.

    bash scripts/run_pipeline.sh                                  # bundled sample, mini preset, CPU
    bash scripts/run_pipeline.sh --data_dir data/csl --ablation   # CSL, every row of the ablation table

Every stage writes into --output_dir and logs to --output_dir/logs/<stage>.log. A stage whose command
and outputs are unchanged since its last successful run is reused, so a re-run after a failure continues
at the failed stage; --force redoes everything, --from STAGE redoes from STAGE on, --skip drops stages.
"""
import argparse
import codecs
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time

from ns_common import QUIET_WARNINGS
from ns_common.progress import StageProgress, format_duration
from ns_common.recipe import BUDGETS, FULL_BUDGET_FROM, Recipe, RecipeError, default_budget, recipe_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable

def parse_args(argv=None):
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=env("DATA_DIR", "data/sample"), help="a directory in the canonical layout (data/prepare_csl.py output, data/sample)")
    p.add_argument("--output_dir", default=env("OUTPUT_DIR", None), help="default output/pipeline/<data dir name>")
    p.add_argument("--preset", default=env("PRESET", "mini"), choices=("mini", "small", "base"), help="size of the from-scratch models")
    p.add_argument("--budget", choices=BUDGETS, default=None,
                   help=f"training length (recipes/*.yml): smoke (tests), sample, full; default: sample below {FULL_BUDGET_FROM} titles, else full")
    p.add_argument("--recipe", default=None, help="offline, paddlenlp or a .yml file (recipes/README.md); default: offline for the models "
                                                  "bootstrapped here, paddlenlp for --ernie_model / --ernie_gram_model")
    p.add_argument("--device", default=env("DEVICE", "cpu"), choices=("cpu", "gpu"))
    p.add_argument("--nproc", type=int, default=int(env("NPROC", "1")), help="processes per training stage (paddle.distributed.launch)")
    p.add_argument("--milvus_uri", default=env("MILVUS_URI", None), help="default: a Milvus Lite file in the output directory")
    p.add_argument("--milvus_token", default=env("MILVUS_TOKEN", ""), help="user:password or API key for a Milvus server")
    p.add_argument("--ernie_model", default=env("ERNIE_MODEL", None), help="a PaddleNLP name (ernie-1.0) or directory instead of the offline bootstrap")
    p.add_argument("--ernie_gram_model", default=env("ERNIE_GRAM_MODEL", None), help="a PaddleNLP name (ernie-gram-zh) or directory instead of the bootstrap")
    p.add_argument("--ablation", action="store_true", help="also train the variants of the ablation table (SimCSE only, in-batch only, ...)")
    p.add_argument("--skip", nargs="*", default=[], metavar="STAGE", help="stages not to run (their outputs must exist if later stages need them)")
    p.add_argument("--from", dest="from_stage", default=None, metavar="STAGE", help="redo this stage and every later one")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--list_stages", action="store_true", help="print the stage names and exit")
    p.add_argument("--dry_run", action="store_true", help="print which stages would run or be reused, and why, without running any")
    p.add_argument("--verbose", action="store_true", help="also print each stage's full command, log file and why it runs")
    p.add_argument("--query", default=None, help="the sample query shown at the end (default: the first dev query)")
    args = p.parse_args(argv)
    if not os.path.isdir(args.data_dir):
        p.error(f"--data_dir {args.data_dir}: no such directory (make one with data/prepare_csl.py, or use data/sample)")
    for rel in ("recall/train_unsupervised.csv", "recall/train.csv", "recall/dev.csv", "recall/corpus.csv", "milvus/milvus_data.csv", "pretrain/domain_corpus.txt"):
        if not os.path.isfile(os.path.join(args.data_dir, rel)):
            p.error(f"--data_dir {args.data_dir}: missing {rel} (expected the canonical layout, see data/README.md)")
    if args.nproc < 1:
        p.error("--nproc must be >= 1")
    if args.output_dir is None:
        args.output_dir = os.path.join("output", "pipeline", os.path.basename(os.path.normpath(args.data_dir)))
    args.budget = args.budget or default_budget(args.data_dir)
    try:
        for name in {args.recipe or "offline", args.recipe or "paddlenlp"}:
            recipe_path(name)
    except RecipeError as e:
        p.error(f"--recipe: {e}")
    args.milvus_uri = args.milvus_uri or os.path.join(args.output_dir, "milvus", "neural_search.db")
    return args


def stage_env():
    """The environment of every command the pipeline runs: unbuffered output (for the live progress), and
    paddle's import-time warnings that mean nothing to a user ignored (ns_common.QUIET_WARNINGS) whatever
    a script imports first."""
    quiet = ",".join(f"ignore:{message}:UserWarning" for message in QUIET_WARNINGS)
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS=",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet])))


class Pipeline:
    """Stages are defined first (stage()), in order, then run (run_all()): the list of stages is what was
    defined for these options. Each stage is numbered ([k/N]), logged to logs/<stage>.log with its full
    command, shown with a live progress line read from its own output, timed, and reused when it finished
    before with the same command and its outputs are still there."""

    # seconds between progress lines when the output is not a terminal (a file, CI's log)
    STATUS_EVERY = float(os.environ.get("NS_PROGRESS_EVERY", "10"))

    def __init__(self, args):
        self.args = args
        self.out = args.output_dir
        self.logs = os.path.join(self.out, "logs")
        self.done_dir = os.path.join(self.out, ".done")
        self.dry_run = getattr(args, "dry_run", False)
        self.verbose = getattr(args, "verbose", False)
        if not self.dry_run:
            os.makedirs(self.logs, exist_ok=True)
            os.makedirs(self.done_dir, exist_ok=True)
        self.timings_file = os.path.join(self.out, "timings.json")
        self.timings = self._read_json(self.timings_file) or {}
        self.definitions = []  # (stage, cmds, options), in running order
        self.recipes = {}  # backbone kind -> the Recipe its stages use
        self.start = time.time()
        self.outcomes = {}  # stage -> "run", "reused" or "skipped" (in a dry run: what would happen)
        self.rebuilt = []  # outputs of the stages run in this invocation: a later stage reading one is redone
        self.tty = sys.stdout.isatty()

    @staticmethod
    def _read_json(path):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        return None

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def stage(self, name, cmds, **options):
        """Defines the next stage (run() says what the options mean)."""
        self.definitions.append((name, cmds, options))

    @property
    def stage_names(self):
        return [name for name, _, _ in self.definitions]

    def run_all(self):
        unknown = [s for s in self.args.skip + ([self.args.from_stage] if self.args.from_stage else []) if s not in self.stage_names]
        if unknown:
            raise SystemExit(f"error: unknown stage {unknown[0]!r}; the stages of this run: {', '.join(self.stage_names)}")
        self.redo_from = self.stage_names.index(self.args.from_stage) if self.args.from_stage else None
        for name, cmds, options in self.definitions:
            self.run(name, cmds, **options)

    def _reason_to_run(self, stage, command, marker, outputs, cmds=(), always=False):
        """Why the stage has to run, or None when its last run can be reused."""
        if self.args.force:
            return "--force"
        if self.redo_from is not None and self.stage_names.index(stage) >= self.redo_from:
            return f"--from {self.args.from_stage}"
        if not os.path.isfile(marker):
            return "no finished run in the output directory"
        with open(marker, encoding="utf-8") as f:
            if f.read() != command:
                return "its command changed since it last finished"
        missing = [o for o in outputs if not os.path.exists(o)]
        if missing:
            return f"output missing: {missing[0]}"
        if always:
            return "it reads what every earlier stage wrote"
        arguments = {str(a) for cmd in cmds for a in cmd[1:]}
        for path in self.rebuilt:  # the path itself or a directory above it given to this stage's commands
            while path.startswith(self.out) and path != self.out:
                if path in arguments:
                    return f"its input {path} was rebuilt in this run"
                path = os.path.dirname(path)
        return None

    def run(self, stage, cmds, outputs=(), distributed=False, throughput=None, fresh=(), always=False):
        """cmds: one argv list, or a list of them run in order (python entry points). outputs: paths that
        must exist after success. distributed: run the (single) command under paddle.distributed.launch.
        throughput: function() -> str, read after the run (e.g. from a summary file); without it, the rate of
        the stage's longest progress bar.
        fresh: directories the stage's command resumes from (pretraining's checkpoints): kept after a failed
        run, so that a re-run continues, but removed when a finished stage is redone (--force, --from, or
        a changed command).
        always: run even when nothing changed (the report: it reads every stage's outputs).
        A stage is also redone when an earlier stage of this invocation rebuilt one of its outputs that this
        stage's commands are given (as the path, or a directory above it)."""
        label = f"[{self.stage_names.index(stage) + 1}/{len(self.stage_names)}] {stage}"
        if stage in self.args.skip:
            self.outcomes[stage] = "skipped"
            print(f"{label}: skipped (--skip)", flush=True)
            return
        if isinstance(cmds[0], str):
            cmds = [cmds]
        if distributed and self.args.nproc > 1:
            cmds = [[PYTHON, "-m", "paddle.distributed.launch", "--nproc_per_node", str(self.args.nproc),
                     "--log_dir", os.path.join(self.logs, f"{stage}_ranks")] + cmd[1:] for cmd in cmds]
        command = " && ".join(shlex.join(cmd) for cmd in cmds)
        marker = os.path.join(self.done_dir, stage)
        reason = self._reason_to_run(stage, command, marker, outputs, cmds, always)
        if reason is None:
            self.outcomes[stage] = "reused"
            print(f"{label}: {'would be ' if self.dry_run else ''}reused (finished before with the same command)", flush=True)
            return
        self.outcomes[stage] = "run"
        self.rebuilt += [str(o) for o in list(outputs) + list(fresh)]
        if self.dry_run:
            print(f"{label}: would run ({reason})", flush=True)
            if self.verbose:
                print(f"        $ {command}", flush=True)
            return
        if os.path.isfile(marker):  # finished before: redo from nothing
            for directory in fresh:
                shutil.rmtree(directory, ignore_errors=True)
            os.remove(marker)  # so that a failure now is never mistaken for the old finished run
        log_path = os.path.join(self.logs, f"{stage}.log")
        print(f"{label}" + (f" ({reason})" if self.verbose else ""), flush=True)
        if self.verbose:
            print(f"        $ {command}\n        log: {log_path}", flush=True)
        start = time.time()
        rc, progress = self._execute(cmds, log_path)
        seconds = time.time() - start
        missing = [o for o in outputs if not os.path.exists(o)]
        if rc != 0 or missing:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read().replace("\r", "\n").splitlines(keepends=True)[-15:]
            reason = f"exit code {rc}" if rc != 0 else f"missing output {missing[0]}"
            print(f"\nstage {stage} failed ({reason})\n  command: {command}\n  log: {log_path}\n  last lines:\n"
                  + "".join("    " + line for line in tail), file=sys.stderr)
            raise SystemExit(1)
        rate = (throughput() if throughput else "") or progress.throughput()
        self.timings[stage] = {"seconds": round(seconds, 1), "throughput": rate}
        with open(self.timings_file, "w", encoding="utf-8") as f:
            json.dump(self.timings, f, indent=2)
        with open(marker, "w", encoding="utf-8") as f:
            f.write(command)
        took = f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)
        print(f"        done in {took}" + (f", {rate}" if rate else ""), flush=True)

    def _execute(self, cmds, log_path):
        """Runs the commands one after the other, their output into the log, with the progress line on
        screen; returns (exit code of the last command run, its StageProgress)."""
        progress = StageProgress()
        env = stage_env()
        rc = 0
        self._last_status = time.time()
        with open(log_path, "w", encoding="utf-8") as log:
            for i, cmd in enumerate(cmds):
                progress.next_command(i, len(cmds))
                log.write(f"$ {shlex.join(cmd)}\n")
                log.flush()
                proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
                reader = threading.Thread(target=self._copy_output, args=(proc.stdout, log, progress), daemon=True)
                reader.start()
                try:
                    while reader.is_alive():
                        reader.join(0.5)
                        self._show(progress)
                    rc = proc.wait()
                except BaseException:  # Ctrl-C or a kill: stop the stage too, and leave the terminal on a new line
                    proc.terminate()
                    proc.wait()
                    self._show(progress, clear=True)
                    raise
                if rc != 0:
                    break
        self._show(progress, clear=True)
        return rc, progress

    @staticmethod
    def _copy_output(stream, log, progress):
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            chunk = os.read(stream.fileno(), 65536)
            text = decoder.decode(chunk, final=not chunk)
            if text:
                log.write(text)
                log.flush()
                progress.feed(text)
            if not chunk:
                return

    def _show(self, progress, clear=False):
        """The progress line: redrawn in place on a terminal, else printed every STATUS_EVERY seconds."""
        if self.tty:
            line = "" if clear else "        " + progress.status()
            width = shutil.get_terminal_size().columns - 1
            sys.stdout.write("\r" + line[:width] + "\x1b[K")
            sys.stdout.flush()
        elif not clear and time.time() - self._last_status >= self.STATUS_EVERY:
            self._last_status = time.time()
            print("        " + progress.status(), flush=True)

    def summary(self):
        """The closing line: how long the whole run took, and what ran."""
        counts = {outcome: sum(1 for o in self.outcomes.values() if o == outcome) for outcome in ("run", "reused", "skipped")}
        if self.dry_run:
            print(f"dry run: {counts['run']} stages would run, {counts['reused']} would be reused, {counts['skipped']} skipped; "
                  f"nothing was run", flush=True)
            return
        ran = sorted((s for s, o in self.outcomes.items() if o == "run"), key=lambda s: -self.timings[s]["seconds"])
        longest = ", ".join(f"{s} {format_duration(self.timings[s]['seconds'])}" for s in ran[:3])
        print(f"\npipeline finished in {format_duration(time.time() - self.start)}: {counts['run']} stages run, "
              f"{counts['reused']} reused, {counts['skipped']} skipped" + (f"; longest: {longest}" if longest else "")
              + f" (timings: {self.timings_file})", flush=True)


def py(script, *args):
    """argv for a repo entry point; None values (optional flags not given) are dropped with their flag."""
    argv = [PYTHON, script]
    items = list(args)
    i = 0
    while i < len(items):
        if i + 1 < len(items) and str(items[i]).startswith("--") and items[i + 1] is None:
            i += 2
            continue
        argv.append(str(items[i]))
        i += 1
    return argv


def main(argv=None):
    args = parse_args(argv)
    pipe = Pipeline(args)
    define_stages(args, pipe)
    if args.list_stages:
        print("\n".join(pipe.stage_names))
        return
    if not args.dry_run:
        with open(pipe.path("settings.json"), "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in vars(args).items() if k != "milvus_token"}, f, indent=2)
    recipes = ", ".join(f"{kind} {recipe.name}" for kind, recipe in pipe.recipes.items())
    print(f"pipeline: data {args.data_dir}, output {args.output_dir}, preset {args.preset}, budget {args.budget}, recipes {recipes}, "
          f"device {args.device}, processes {args.nproc}, Milvus {args.milvus_uri}", flush=True)
    pipe.run_all()
    if args.dry_run:
        pipe.summary()
        return
    P = pipe.path
    recall_export, reranker_export = P("export", "recall"), P("export", "reranker")
    milvus = ["--uri", args.milvus_uri] + (["--token", args.milvus_token] if args.milvus_token else [])
    with open(P("report.md"), encoding="utf-8") as f:
        print("\n" + f.read())
    print(f"outputs: {args.output_dir} (models: pretrain/, simcse/, inbatch/, reranker/; exports: export/recall, export/reranker, export/ranking; "
          f"Milvus: {args.milvus_uri}; logs: {pipe.logs}; report: {P('report.md')})")
    if args.query is None:
        with open(os.path.join(args.data_dir, "recall/dev.csv"), encoding="utf-8") as f:
            args.query = f.readline().split("\t")[0].strip()
    print(f"\nsample query through the CLI: {args.query}", flush=True)
    subprocess.run(py("search/query.py", "--model_dir", recall_export, "--query", args.query, "--top_k", "5",
                      "--reranker_dir", reranker_export, *milvus), cwd=ROOT, env=stage_env(), check=False)
    pipe.summary()


def define_stages(args, pipe):
    """Every stage of this run, in order: its commands (the training flags from the recipes), its outputs."""
    P = pipe.path
    data = lambda rel: os.path.join(args.data_dir, rel)  # noqa: E731
    dev_pairs, train_pairs, corpus = data("recall/dev.csv"), data("recall/train.csv"), data("recall/corpus.csv")
    # the recipe of each backbone's stages: offline for a model bootstrapped here, PaddleNLP's for a pretrained one
    recipe = {kind: Recipe(args.recipe or ("paddlenlp" if given else "offline"), args.budget, args.preset)
              for kind, given in (("ernie", args.ernie_model), ("ernie-gram", args.ernie_gram_model))}
    pipe.recipes = recipe
    emb = str(recipe["ernie"].setting("inbatch", "output_emb_size", 0))
    common = ["--device", args.device]
    milvus = ["--uri", args.milvus_uri] + (["--token", args.milvus_token] if args.milvus_token else [])

    # 1. models to start from: PaddleNLP names/directories online, else from-scratch ones (vocab from the corpus)
    ernie = args.ernie_model or P("bootstrap", "ernie")
    ernie_gram = args.ernie_gram_model or P("bootstrap", "ernie-gram")
    if not (args.ernie_model and args.ernie_gram_model):
        pipe.stage("bootstrap", py("ns_common/bootstrap.py", "--corpus_files", data("recall/train_unsupervised.csv"), data("pretrain/domain_corpus.txt"),
                                 "--model_type", "both", "--preset", args.preset, "--save_dir", P("bootstrap")),
                 outputs=[P("bootstrap", "ernie", "config.json"), P("bootstrap", "ernie-gram", "config.json")])

    # the labelled training queries: 3/4 train the neural models, 1/4 is held out to fit the search system's
    # fusion and final-ranking weights (on the models' own training queries their scores are overconfident)
    train_model, train_fit = P("split", "train_model.csv"), P("split", "train_fit.csv")
    pipe.stage("split_train", py("data/split_train.py", "--train_file", train_pairs, "--output_dir", P("split")), outputs=[train_model, train_fit])

    # 2. domain pretraining of both backbones (ERNIE for recall, ERNIE-Gram for the reranker)
    shared_vocab = not args.ernie_model and not args.ernie_gram_model  # the bootstraps share one vocabulary
    data_prefix = {"ernie": P("pretrain_data", "ernie"), "ernie-gram": P("pretrain_data", "ernie" if shared_vocab else "ernie-gram")}
    pipe.stage("pretrain_data", [py("domain_pretrain/data_tools/create_pretraining_data.py", "--input_path", data("pretrain/domain_corpus.txt"),
                                  "--model_name_or_path", model, "--output_prefix", data_prefix[kind])
                               for kind, model in (("ernie", ernie), ("ernie-gram", ernie_gram)) if kind == "ernie" or not shared_vocab],
             outputs=[data_prefix["ernie"] + "_idx.npz", data_prefix["ernie-gram"] + "_idx.npz"])
    domain = {}
    for kind, model, stage in (("ernie", ernie, "pretrain_ernie"), ("ernie-gram", ernie_gram, "pretrain_ernie_gram")):
        out = P("pretrain", kind)
        pipe.stage(stage, py("domain_pretrain/run_pretrain.py", "--model_type", kind, "--model_name_or_path", model,
                           "--input_prefix", data_prefix[kind], "--output_dir", out, *recipe[kind].flags(stage), *common),
                 outputs=[os.path.join(out, "final", "config.json"), os.path.join(out, "pretrain_summary.json")], distributed=True, fresh=[out],
                 throughput=lambda out=out: f"{(Pipeline._read_json(os.path.join(out, 'pretrain_summary.json')) or {}).get('tokens_per_second', 0):.0f} tokens/s")
        domain[kind] = os.path.join(out, "final")

    # 3. SimCSE (unsupervised) from the domain ERNIE, then in-batch negatives with BM25 hard negatives
    def simcse(stage, backbone, save_dir):
        pipe.stage(stage, py("simcse/train.py", "--train_set_file", data("recall/train_unsupervised.csv"), "--model_name_or_path", backbone,
                           "--save_dir", save_dir, *recipe["ernie"].flags("simcse"), *common),
                 outputs=[os.path.join(save_dir, "model_final", "model_state.pdparams")], distributed=True)
        return os.path.join(save_dir, "model_final")

    def inbatch(stage, backbone, save_dir, init=None, hard_negatives=None):
        pipe.stage(stage, py("inbatch_negative/train_batch_neg.py", "--train_set_file", train_model, "--model_name_or_path", backbone,
                           "--init_from_ckpt", init, "--hard_negative_file", hard_negatives, "--save_dir", save_dir,
                           *recipe["ernie"].flags("inbatch"), *common),
                 outputs=[os.path.join(save_dir, "model_final", "model_state.pdparams")], distributed=True)
        return os.path.join(save_dir, "model_final")

    simcse_ckpt = simcse("simcse", domain["ernie"], P("simcse", "domain"))
    hard_negatives = P("hard_negatives.tsv")
    pipe.stage("hard_negatives", py("inbatch_negative/mine_hard_negatives.py", "--train_set_file", train_model, "--corpus_file", corpus,
                                  "--output_file", hard_negatives, *recipe["ernie"].flags("hard_negatives")), outputs=[hard_negatives])
    final_ckpt = inbatch("inbatch", domain["ernie"], P("inbatch", "domain_simcse"), init=simcse_ckpt, hard_negatives=hard_negatives)

    # 4. exact-search recall + Recall@K of every dense variant on the dev queries
    variants = [("domain_simcse", domain["ernie"], simcse_ckpt), ("domain_simcse_inbatch", domain["ernie"], final_ckpt)]
    if args.ablation:
        simcse_only = simcse("ablation_simcse_only", ernie, P("simcse", "scratch"))
        inbatch_only = inbatch("ablation_inbatch_only", ernie, P("inbatch", "scratch"))
        simcse_inbatch = inbatch("ablation_simcse_inbatch", ernie, P("inbatch", "scratch_simcse"), init=simcse_only)
        variants = [("untrained", ernie, None), ("inbatch_only", ernie, inbatch_only), ("simcse_only", ernie, simcse_only),
                    ("simcse_inbatch", ernie, simcse_inbatch)] + variants
    # on the dev queries (reported) and on the held-out training queries (what a choice between variants may use)
    evaluations = (("recall", "metrics", dev_pairs), ("recall_fit", "metrics_fit", train_fit))
    pipe.stage("recall_eval", [cmd for name, backbone, ckpt in variants for results, metrics, pairs in evaluations for cmd in (
        py("inbatch_negative/recall.py", "--model_name_or_path", backbone, "--params_path", ckpt, "--output_emb_size", emb if ckpt else "0",
           "--corpus_file", corpus, "--similar_text_pair_file", pairs, "--recall_result_dir", P(results, name), "--recall_num", "50", *common),
        py("inbatch_negative/evaluate.py", "--similar_text_pair_file", pairs, "--recall_result_file", P(results, name, "recall_result.txt"),
           "--recall_num", "50", "--name", name, "--output_json", P(metrics, f"{name}.json")))],
        outputs=[P(metrics, f"{name}.json") for name, _, _ in variants for _, metrics, _ in evaluations])

    # 5. the final recall model into Milvus: export -> embeddings (.npy) -> insert (dense + BM25 field)
    recall_export = P("export", "recall")
    pipe.stage("export", py("inbatch_negative/export_model.py", "--params_path", final_ckpt, "--model_name_or_path", domain["ernie"],
                          "--output_emb_size", emb, "--output_path", recall_export), outputs=[os.path.join(recall_export, "inference.pdiparams")])
    embeddings = P("milvus", "corpus_embedding.npy")
    pipe.stage("feature_extract", py("recall/milvus/feature_extract.py", "--model_dir", recall_export, "--corpus_file", data("milvus/milvus_data.csv"),
                                   "--output_path", P("milvus"), *common), outputs=[embeddings])
    pipe.stage("milvus_insert", py("recall/milvus/insert.py", "--corpus_file", data("milvus/milvus_data.csv"), "--embedding_path", embeddings,
                                 "--drop", *milvus), outputs=[args.milvus_uri] if args.milvus_uri.endswith(".db") else [])

    # 6. the dev queries through Milvus: dense (HNSW), BM25 (Milvus full-text) and hybrid (RRF)
    modes = ("dense", "bm25", "hybrid")
    milvus_result = lambda queries, mode: P("milvus", f"{queries}_recall_{mode}.txt")  # noqa: E731
    pipe.stage("milvus_eval", [cmd for mode in modes for cmd in (
        py("search/query.py", "--model_dir", recall_export, "--query_file", dev_pairs, "--mode", mode, "--recall_num", "50",
           "--recall_result_file", milvus_result("dev", mode), *milvus),
        py("inbatch_negative/evaluate.py", "--similar_text_pair_file", dev_pairs, "--recall_result_file", milvus_result("dev", mode),
           "--recall_num", "50", "--name", f"milvus_{mode}", "--output_json", P("metrics", f"milvus_{mode}.json")))],
        outputs=[P("metrics", f"milvus_{mode}.json") for mode in modes])

    # 7. the reranker: training data mined from hybrid recall, ERNIE-Gram from domain pretraining
    sort_train, sort_dev, sort_pseudo = P("sort", "train_pairwise.csv"), P("sort", "dev_pairwise.csv"), P("sort", "pseudo_pairwise.csv")
    pipe.stage("rerank_data", [
        py("ernie_matching/pseudo_pairs.py", "--corpus_file", corpus, "--output_file", sort_pseudo),
        py("search/query.py", "--model_dir", recall_export, "--query_file", train_model, "--mode", "hybrid", "--recall_num", "50",
           "--recall_result_file", milvus_result("train", "hybrid"), *milvus),
        py("ernie_matching/mine_pairwise.py", "--recall_result_file", milvus_result("train", "hybrid"), "--pairs_file", train_model,
           "--output_train_file", sort_train),
        py("ernie_matching/mine_pairwise.py", "--recall_result_file", milvus_result("dev", "hybrid"), "--pairs_file", dev_pairs,
           "--output_labeled_file", sort_dev, "--negative_ranks", "all")], outputs=[sort_train, sort_dev, sort_pseudo])
    reranker_dir = P("reranker")
    pseudo = [sort_pseudo] if recipe["ernie-gram"].option("train_reranker", "pseudo_queries") else []
    pipe.stage("train_reranker", py("ernie_matching/train_pairwise.py", "--train_file", sort_train, *pseudo,
                                  "--test_file", sort_dev, "--model_name_or_path", domain["ernie-gram"], "--save_dir", reranker_dir,
                                  *recipe["ernie-gram"].flags("train_reranker"), *common),
             outputs=[os.path.join(reranker_dir, "model_final", "model_state.pdparams")], distributed=True)
    reranker_export = P("export", "reranker")
    pipe.stage("export_reranker", py("ernie_matching/export_model.py", "--params_path", os.path.join(reranker_dir, "model_final"),
                                   "--model_name_or_path", domain["ernie-gram"], "--output_path", reranker_export),
             outputs=[os.path.join(reranker_export, "inference.pdiparams")])
    auc_file = P("reranker_auc.jsonl")
    pipe.stage("reranker_auc", [
        py("ernie_matching/evaluate.py", "--test_file", sort_dev, "--scorer", "reranker", "--model_dir", reranker_export, "--results_file", auc_file, *common),
        py("ernie_matching/evaluate.py", "--test_file", sort_dev, "--scorer", "cosine", "--params_path", final_ckpt,
           "--model_name_or_path", domain["ernie"], "--output_emb_size", emb, "--results_file", auc_file, *common)], outputs=[auc_file])

    # 8. every Milvus recall list reranked, and scored again
    # the reranker's order, and (beyond PaddleNLP) that order fused with the recall ranks (RRF, k = 60)
    rerankings = (("rerank", []), ("fused", ["--fuse_recall_rank", "60"]))
    pipe.stage("rerank_eval", [cmd for mode in modes for kind, fuse in rerankings for cmd in (
        py("ernie_matching/rerank_results.py", "--recall_result_file", milvus_result("dev", mode), "--output_file", milvus_result("dev", f"{mode}_{kind}"),
           "--model_dir", reranker_export, "--recall_num", "50", *fuse, *common),
        py("inbatch_negative/evaluate.py", "--similar_text_pair_file", dev_pairs, "--recall_result_file", milvus_result("dev", f"{mode}_{kind}"),
           "--recall_num", "50", "--name", f"milvus_{mode}_{kind}", "--output_json", P("metrics", f"milvus_{mode}_{kind}.json")))],
        outputs=[P("metrics", f"milvus_{mode}_{kind}.json") for mode in modes for kind, _ in rerankings])

    # 9. the search system (the default search path): the learned ranking over BM25's candidates, fitted by
    # cross-validation over the training queries (the lexical model on all of them, the neural signals only on the
    # held-out quarter the models never trained on), then the dev queries through query.py's default mode, next to
    # the keyword-search bar (bm25s on joined character uni+bigrams, outside Milvus)
    ranking_dir = P("export", "ranking")
    pipe.stage("fit_ranking", py("search/fit.py", "--train_file", train_pairs, "--heldout_file", train_fit, "--corpus_file", data("milvus/milvus_data.csv"),
                               "--model_dir", recall_export, "--reranker_dir", reranker_export, "--output_dir", ranking_dir, *milvus, *common),
               outputs=[os.path.join(ranking_dir, "ranking.json")])
    pipe.stage("system_eval", [
        py("search/query.py", "--model_dir", recall_export, "--reranker_dir", reranker_export, "--ranking_dir", ranking_dir, "--query_file", dev_pairs,
           "--recall_num", "50", "--recall_result_file", milvus_result("dev", "system"), *milvus, *common),
        py("inbatch_negative/evaluate.py", "--similar_text_pair_file", dev_pairs, "--recall_result_file", milvus_result("dev", "system"),
           "--recall_num", "50", "--name", "milvus_system", "--output_json", P("metrics", "milvus_system.json")),
        py("ns_common/bm25.py", "--corpus_file", corpus, "--similar_text_pair_file", dev_pairs, "--tokens", "joined",
           "--recall_result_file", P("recall", "bm25_reference", "recall_result.txt")),
        py("inbatch_negative/evaluate.py", "--similar_text_pair_file", dev_pairs, "--recall_result_file", P("recall", "bm25_reference", "recall_result.txt"),
           "--recall_num", "50", "--name", "bm25_reference", "--output_json", P("metrics", "bm25_reference.json"))],
        outputs=[P("metrics", "milvus_system.json"), P("metrics", "bm25_reference.json")])

    # 10. the report (the sample query through the CLI follows in main())
    pipe.stage("report", py("scripts/report.py", "--output_dir", args.output_dir), outputs=[P("report.md"), P("report.json"), P("recall_at_k.png")],
               always=True)


if __name__ == "__main__":
    main()
