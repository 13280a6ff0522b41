"""Fits the search system's learned ranking (search/system.py) by k-fold cross-validation over the training
queries, never on dev, and writes the ranking directory that query.py, the web service and the pipeline load:

    python -m search.fit --train_file data/sample/recall/train.csv --corpus_file data/sample/milvus/milvus_data.csv \
        --uri output/pipeline/sample/milvus/neural_search.db --output_dir output/pipeline/sample/export/ranking \
        [--heldout_file output/pipeline/sample/split/train_fit.csv --model_dir output/pipeline/sample/export/recall \
         --reranker_dir output/pipeline/sample/export/reranker]
    # cross-fitted: one held-out file per recall model, --model_dir's first
    python -m search.fit ... --model_dir P/export/recall --heldout_file P/split/train_fit.csv P/split/fold1_heldout.csv \
        P/split/fold2_heldout.csv P/split/fold3_heldout.csv --fold_model_dirs P/crossfit/fold{1,2,3}/export

1. Candidates: each training query's BM25 top 50 from the collection (the gold title among them or not).
2. Lexical ranking: LambdaMART over search.features, for each candidate feature set its hyperparameters picked by
   k-fold cross-validation (folds by query, seeded) over every training query: lexical features hold nothing
   a neural model was trained on.
3. Neural ranking (with --heldout_file and a model): on the held-out queries only (queries the recall model
   and the reranker never trained on), LambdaMART over the lexical model's score (out of fold) and the neural
   signals (dense cosine and its rank, the reranker's logit), or over every lexical feature and the dense cosine
   in one model, each set cross-validated the same way. Cross-fitting (--fold_model_dirs, one per extra
   --heldout_file): each held-out file's queries are scored by a recall model that never trained on them, so the
   neural ranking fits on all of them (the pipeline: every training query, recipes/pretrained.yml).
   --dense_candidates K ...: the joint set is also tried over BM25's top 50 united with the dense leg's top k
   (search.ranking.united_pool; each query's top k by the recall model that never trained on it: the served one
   through the collection, a fold model over its own embedding of the corpus); the best pool and set by
   cross-validated MRR@10 wins, and the search system then unites the legs the same way.
4. The one-standard-error rule at each step: a learned ranking is kept only when its cross-validated MRR@10
   beats the simpler one (BM25's order; then the lexical score alone) by at least one standard error of the
   per-query difference; else the simpler one is served, and ranking.json says so.

Writes <output_dir>/ranking.json (the choice, the feature lists, the cross-validation tables, feature importance,
the fingerprints of the corpus and models), lexical.txt / neural.txt (LightGBM's text format) and
lexical_stats.json; prints the CV table.
"""

import argparse
import json
import os
import shutil
import tempfile
import time

import numpy as np

from ns_common.cli import check_files, check_outputs, entry_point, fail, model_inputs, replaceable_dir
from ns_common.errors import BadInputError
from ns_common.io import weights_fingerprint
from ns_common.utils import logger
from recall.milvus.config import add_config_args, database_input, load_config
from recall.milvus.data import iter_corpus_chunks, read_queries
from recall.milvus.model import TextEncoder, add_model_args, check_model_args
from recall.milvus.search import Hit, MilvusSearcher
from search import learn
from search.features import FEATURES, LexicalStats, lexical_features
from search.system import (
    CANDIDATES,
    FORMAT,
    NEURAL_FEATURES,
    RANKING_FILE,
    neural_matrix,
    rerank_logits,
    united_pool,
)

# the lexical feature sets compared (each with its own hyperparameters): BM25's signals alone, then every feature
LEXICAL_SETS = {
    "BM25 signals only": ["bm25_rel", "bm25_rank", "bm25_uni", "bm25_bi", "bm25_word"],
    "every lexical feature": FEATURES,
}
# the neural feature sets: each on top of the lexical model's score (stacked), or the lexical features and the dense
# cosine in one model (joint: the trees see which lexical evidence the cosine confirms or contradicts)
DENSE = ["cosine", "cosine_rank", "cosine_gap"]
NEURAL_SETS = {
    "+ dense cosine": ["lexical_score", *DENSE],
    "+ dense cosine, rank fusion": ["lexical_score", *DENSE, "rank_fusion"],
    "+ reranker": ["lexical_score", "rerank_logit"],
    "+ dense cosine + reranker": NEURAL_FEATURES,
    "every lexical feature + dense cosine": FEATURES + DENSE,
}
GRIDS = {  # hyperparameters tried per feature set; "neural" (small) for models over the lexical score
    "lexical": {"n_trees": (100, 200), "num_leaves": (4, 7), "learning_rate": (0.05,), "min_child_samples": (20, 50)},
    "neural": {"n_trees": (50, 100), "num_leaves": (3, 5), "learning_rate": (0.05,), "min_child_samples": (20,)},
}


def grid_for(features, tier_grid, lexical_grid):
    """A set holding the lexical features themselves needs a model the size of the lexical one: the lexical grid."""
    return lexical_grid if set(FEATURES) <= set(features) else tier_grid


def tier_grids(grid):
    """GRIDS (--grid full), or each cut to its first combination (--grid first: no search)."""
    if grid == "full":
        return GRIDS
    return {tier: {name: values[:1] for name, values in tier_grid.items()} for tier, tier_grid in GRIDS.items()}


# every file a ranking directory holds, its marker first: a directory --output_dir replaces whole holds nothing else
RANKING_FILES = (RANKING_FILE, "lexical_stats.json", "lexical.txt", "neural.txt")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--train_file", required=True, help="query<TAB>gold title pairs: every training query (never dev)"
    )
    parser.add_argument(
        "--corpus_file", required=True, help="the corpus the collection was built from (its lexical statistics)"
    )
    parser.add_argument(
        "--output_dir", required=True, help="the ranking directory to write (the pipeline: <output>/export/ranking)"
    )
    parser.add_argument(
        "--heldout_file",
        nargs="+",
        default=None,
        help="pairs the neural models never trained on: fit the neural ranking on them; cross-fitting: one file per "
        "recall model, the first --model_dir's, then one per --fold_model_dirs",
    )
    parser.add_argument(
        "--fold_model_dirs",
        nargs="+",
        default=[],
        help="cross-fitting: exported recall models, the i-th trained on every training query but those of the "
        "(i+1)-th --heldout_file, so the dense signals of every held-out file are out of fold",
    )
    parser.add_argument(
        "--reranker_dir", default=None, help="exported reranker (or checkpoint dir): its logit is a candidate signal"
    )
    parser.add_argument(
        "--dense_candidates",
        type=int,
        nargs="+",
        default=[0],
        help="candidate pools tried for the neural ranking: BM25's top 50 united with the dense leg's top k, for each "
        "k given (0: BM25's alone); cross-validation picks one (needs --model_dir and --heldout_file)",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (by query)")
    parser.add_argument("--seed", type=int, default=1000, help="seeds the folds and LightGBM")
    parser.add_argument(
        "--grid",
        choices=("full", "first"),
        default="full",
        help="hyperparameters per feature set: full: every combination of the tier's grid, chosen by "
        "cross-validation; first: only the grid's first (no search: the smoke budget, whose tests check the flow)",
    )
    add_model_args(parser, batch_size=64)
    add_config_args(parser, skip=("batch_size",))
    args = parser.parse_args(argv)
    args.heldout_file = args.heldout_file or []
    check_files(
        ("train_file", args.train_file),
        ("corpus_file", args.corpus_file),
        *(("heldout_file", path) for path in args.heldout_file),
    )
    check_outputs(
        replaced_dirs=[("output_dir", args.output_dir, RANKING_FILES)],
        inputs=[
            ("train_file", args.train_file),
            ("corpus_file", args.corpus_file),
            *(("heldout_file", path) for path in args.heldout_file),
            *(("fold_model_dirs", path) for path in args.fold_model_dirs),
            *database_input(args),
            *model_inputs(args),
        ],
    )
    if args.reranker_dir and not os.path.isdir(args.reranker_dir):
        fail(f"--reranker_dir {args.reranker_dir}: no such directory")
    if args.folds < 2:
        fail(f"--folds must be at least 2, got {args.folds}")
    if len(args.heldout_file) > 1 and not args.fold_model_dirs:
        fail("several --heldout_file: give the recall model of each after the first (--fold_model_dirs)")
    if args.heldout_file and not (args.model_dir or args.params_path or args.reranker_dir):
        fail("--heldout_file fits the neural ranking: give --model_dir (dense cosine) and/or --reranker_dir")
    if any(k < 0 for k in args.dense_candidates):
        fail(f"--dense_candidates: each k must be 0 or more, got {' '.join(map(str, args.dense_candidates))}")
    if max(args.dense_candidates) and not (args.heldout_file and (args.model_dir or args.params_path)):
        fail("--dense_candidates above 0 unites the dense leg's hits: give --model_dir and --heldout_file")
    if args.fold_model_dirs:
        check_crossfit_args(args)
    if args.model_dir or args.params_path:
        check_model_args(args)
    return args


def check_crossfit_args(args):
    """Cross-fitting pairs each --heldout_file with the recall model that never saw its queries: one file per model,
    exported models only, and no reranker (it trained on the queries of every fold but one)."""
    if not args.model_dir:
        fail("--fold_model_dirs cross-fits the exported --model_dir: give --model_dir (not --params_path)")
    if len(args.heldout_file) != 1 + len(args.fold_model_dirs):
        fail(
            f"--heldout_file: {len(args.heldout_file)} files for {1 + len(args.fold_model_dirs)} recall models "
            "(--model_dir and each --fold_model_dirs): give one held-out file per model, --model_dir's first"
        )
    if args.reranker_dir:
        fail(
            "--reranker_dir with --fold_model_dirs: the reranker trained on the queries of other folds, so its logit "
            "is not out of fold there; fit the cross-fitted ranking without it"
        )
    for path in args.fold_model_dirs:
        if not os.path.isfile(os.path.join(path, "inference.pdiparams")):
            fail(f"--fold_model_dirs {path}: not an exported model (no inference.pdiparams)")


def read_pairs(path):
    """{query: set of gold titles}, queries in file order."""
    queries, golds = read_queries(path)
    if not golds:
        fail(f"{path}: need query<TAB>gold title lines")
    pairs = {}
    for query, gold in zip(queries, golds):
        pairs.setdefault(" ".join(query.split()), set()).add(gold)
    return pairs


def read_heldout(paths):
    """({query: gold titles} over every held-out file, {query: index of its file}); a query in two files fails."""
    heldout, fold_of = {}, {}
    for fold, path in enumerate(paths):
        for query, golds in read_pairs(path).items():
            if query in fold_of:
                fail(f"--heldout_file {path}: query {query!r} is held out in {paths[fold_of[query]]} too")
            heldout[query], fold_of[query] = golds, fold
    return heldout, fold_of


def out_of_fold_scores(data, params, folds, seed):
    """Each query's candidate scores by the model fitted on the other folds (what cross_validate ranks by)."""
    fold_of = learn.fold_assignment(len(data), folds, seed)
    scores = [None] * len(data)
    for fold in range(folds):
        held_out = np.flatnonzero(fold_of == fold)
        booster = learn.fit_ranker(data.subset(np.flatnonzero(fold_of != fold)), params, seed=seed)
        for i, s in zip(held_out, learn.score_groups(booster, data.subset(held_out))):
            scores[i] = s
    return scores


def cv_row(tier, name, ranks, bm25_ranks, params=None, features=None):
    comparison = learn.paired_comparison(ranks, bm25_ranks)
    metrics = learn.ranking_metrics(ranks)
    return {
        "tier": tier,
        "row": name,
        "queries": len(ranks),
        **{k: round(v, 2) for k, v in metrics.items()},
        "gain_vs_bm25": round(comparison["rr_gain"], 2),
        "gain_se": round(comparison["rr_gain_se"], 2),
        "bm25_failures_fixed": comparison["fixed"],
        "bm25_successes_broken": comparison["broken"],
        "params": params,
        "features": features,
    }


def cross_validate_sets(tier, data, sets, grid, bm25_ranks, folds, seed, lexical_grid=None):
    """Cross-validates every feature set of one tier, each with its hyperparameters from the grid (the lexical grid
    for a set holding the lexical features): (tried, CV rows); tried: [{"name", "features", "params", "ranks"}, ...]."""
    lexical_grid = GRIDS["lexical"] if lexical_grid is None else lexical_grid
    tried, rows = [], []
    for name, features in sets.items():
        subset = data.select_features(features)
        params, _ = learn.select_hyperparameters(subset, grid_for(features, grid, lexical_grid), folds, seeds=(seed,))
        ranks = learn.cross_validate(subset, params, folds, seed)
        tried.append({"name": name, "features": features, "params": params, "ranks": ranks})
        rows.append(cv_row(tier, f"{tier}: {name}", ranks, bm25_ranks, params, features))
        logger.info(f"{tier}: {name}: {learn.ranking_metrics(ranks)} with {params}")
    return tried, rows


def keep_best(tier, tried, rows, baseline_name, baseline_ranks):
    """The best cross-validated set of `tried` (MRR@10; ties: fewer features) if it beats the baseline by the
    one-standard-error rule, else None (the baseline is served); marks the chosen row of `rows`."""
    best = max(tried, key=lambda t: (learn.ranking_metrics(t["ranks"])["MRR@10"], -len(t["features"])))
    against = learn.paired_comparison(best["ranks"], baseline_ranks)
    keep = against["rr_gain"] > 0 and against["rr_gain"] >= against["rr_gain_se"]
    logger.info(
        f"{tier}: {best['name']} vs {baseline_name}: MRR@10 {against['rr_gain']:+.2f} points (standard error "
        f"{against['rr_gain_se']:.2f}): {'kept' if keep else 'not clearly better: ' + baseline_name + ' is served'}"
    )
    for row in rows:
        row["chosen"] = row["row"] == (f"{tier}: {best['name']}" if keep else baseline_name)
    return best if keep else None


def choose(tier, data, sets, grid, baseline_name, baseline_ranks, bm25_ranks, folds, seed, lexical_grid=None):
    """Cross-validates every feature set of one tier; returns (the winner or None when the baseline is kept by the
    one-standard-error rule, rows of the CV table). The winner: {"name", "features", "params", "ranks"}."""
    tried, rows = cross_validate_sets(tier, data, sets, grid, bm25_ranks, folds, seed, lexical_grid)
    rows = [cv_row(tier, baseline_name, baseline_ranks, bm25_ranks)] + rows
    return keep_best(tier, tried, rows, baseline_name, baseline_ranks), rows


def importance(booster):
    """Each feature's share (%) of the model's total split gain."""
    gain = booster.feature_importance("gain")
    total = float(gain.sum()) or 1.0
    return {name: round(100.0 * float(g) / total, 2) for name, g in zip(booster.feature_name(), gain)}


@entry_point
def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    train = read_pairs(args.train_file)
    heldout, fold_of = read_heldout(args.heldout_file)
    if len(train) < 2 * args.folds:
        fail(
            f"--train_file {args.train_file}: {len(train)} queries; need at least {2 * args.folds} for {args.folds}-fold cross-validation"
        )
    texts = [t for _, chunk in iter_corpus_chunks(args.corpus_file, 65536) for t in chunk]
    stats = LexicalStats.from_texts(texts)
    encoder = TextEncoder.from_args(args) if heldout and (args.model_dir or args.params_path) else None
    reranker = None
    if heldout and args.reranker_dir:
        from ernie_matching.reranker import Reranker

        reranker = Reranker.from_reranker_dir(args)
    queries = list(dict.fromkeys(list(train) + list(heldout)))
    with MilvusSearcher(load_config(args), encoder, warn_truncation=False) as searcher:
        built = (searcher.info.meta or {}).get("corpus")
        if built and built.get("sha1") != stats.sha1:
            fail(
                f"--corpus_file {args.corpus_file} is not the corpus collection {searcher.config.collection} at {searcher.config.uri} "
                f"was built from ({built.get('documents')} documents): pass that corpus, or rebuild the collection"
            )
        candidates = dict(
            zip(queries, searcher.bm25_with_vectors(queries, CANDIDATES, with_vectors=encoder is not None))
        )
        united = max(args.dense_candidates) if heldout and encoder is not None else 0
        embedded = {}  # the fold models' corpus embeddings: their candidates' cosines read from them
        tops = dense_tops(args, list(heldout), fold_of, searcher, encoder, texts, united, embedded) if united else None
    logger.info(f"{len(queries)} queries: BM25 top {CANDIDATES} from the collection")

    # 2. the lexical ranking, over every training query
    train_queries = list(train)
    data = learn.build_grouped_data(
        train_queries,
        [[h.text for h, _ in candidates[q]] for q in train_queries],
        [np.array([h.score for h, _ in candidates[q]]) for q in train_queries],
        [train[q] for q in train_queries],
        stats,
    )
    where = f"collection {searcher.config.collection} at {searcher.config.uri}"
    check_gold_found(data, args.train_file, args, where)
    bm25_ranks = learn.baseline_ranks(data)
    grids = tier_grids(args.grid)
    lexical, table = choose(
        "lexical",
        data,
        LEXICAL_SETS,
        grids["lexical"],
        "BM25 alone",
        bm25_ranks,
        bm25_ranks,
        args.folds,
        args.seed,
        lexical_grid=grids["lexical"],
    )
    spec = {
        "format": FORMAT,
        "candidates": CANDIDATES,
        "lexical": None,
        "neural": None,
        "train_file": args.train_file,
        "heldout_file": args.heldout_file,
        "queries": {"train": len(train), "heldout": len(heldout)},
        "fold_models": [weights_fingerprint(path) for path in args.fold_model_dirs],
        "folds": args.folds,
        "grid": args.grid,
        "seed": args.seed,
        "fitted_with": {
            "corpus": {"documents": stats.n_docs, "sha1": stats.sha1},
            "recall_model": weights_fingerprint(args.model_dir) if encoder is not None else None,
            "reranker": weights_fingerprint(args.reranker_dir) if reranker is not None else None,
        },
    }
    boosters = {}
    if lexical:
        boosters["lexical"] = learn.fit_ranker(
            data.select_features(lexical["features"]), lexical["params"], seed=args.seed
        )
        spec["lexical"] = {
            "features": lexical["features"],
            "params": lexical["params"],
            "model_file": "lexical.txt",
            "set": lexical["name"],
        }

    # 3. the neural ranking, over the held-out queries only
    if heldout and (encoder is not None or reranker is not None):
        neural, neural_rows = fit_neural(
            args,
            heldout,
            fold_of,
            candidates,
            data,
            lexical,
            boosters.get("lexical"),
            stats,
            encoder,
            reranker,
            where,
            tops,
            embedded,
        )
        table += neural_rows
        if neural:
            boosters["neural"] = learn.fit_ranker(
                neural["data"].select_features(neural["features"]), neural["params"], seed=args.seed
            )
            spec["neural"] = {
                "features": neural["features"],
                "params": neural["params"],
                "model_file": "neural.txt",
                "set": neural["name"],
                "dense_candidates": neural["dense_candidates"],
            }
    spec["chosen"] = "neural" if spec["neural"] else "lexical" if spec["lexical"] else "bm25"
    spec["cross_validation"] = table
    spec = write_ranking(args.output_dir, spec, stats, boosters)
    print_table(table)
    logger.info(
        f"fitted on {len(train)} training queries ({len(heldout)} held out) in {time.time() - start:.1f}s: "
        f"serving {spec['chosen']} -> {args.output_dir}"
    )
    return spec


def check_gold_found(data, pairs_file, args, where):
    """Cross-validation learns from the queries whose gold title is among their BM25 candidates: when the training
    folds of some fold hold none (none at all, when the collection holds other texts than the pairs' gold titles),
    a one-line BadInputError naming the file and what to check instead of LightGBM's "nothing to learn from"."""
    has_gold = data.has_gold()
    if len(data) >= args.folds:
        folds = learn.fold_assignment(len(data), args.folds, args.seed)
        if all(has_gold[folds != fold].any() for fold in range(args.folds)):
            return
    raise BadInputError(
        f"{pairs_file}: {int(has_gold.sum())} of {len(data)} queries find their gold title among BM25's top "
        f"{CANDIDATES} in {where}, too few to learn from in {args.folds}-fold cross-validation: check that the gold "
        f"titles are the texts the collection holds (--corpus_file {args.corpus_file}: one title a line, or paper "
        "records in a .jsonl file)"
    )


def fold_encoder(args, fold):
    """The recall model of a cross-fitting fold (1-based: --fold_model_dirs[fold - 1]), with --model_dir's settings."""
    return TextEncoder(
        args.fold_model_dirs[fold - 1],
        max_seq_length=args.max_seq_length,
        batch_size=args.batch_size,
        device=args.device,
        cpu_threads=args.cpu_threads,
        enable_mkldnn=args.enable_mkldnn,
    )


def by_fold(args, queries, fold_of):
    """(fold, its queries in order) for the served model's fold 0 and each fold model's, the empty ones left out."""
    for fold in range(1 + len(args.fold_model_dirs)):
        mine = [q for q in queries if fold_of[q] == fold]
        if mine:
            yield fold, mine


def dense_cosines(args, queries, fold_of, candidates, encoder, embedded=None):
    """Each held-out query's cosine with each of its candidates, by the recall model that never trained on it: the
    served --model_dir against the collection's stored vectors, or a fold model (cross-fitting) against its own
    embedding of the candidates' texts (taken from `embedded`, {fold: {text: vector}} of dense_tops, where that fold's
    model embedded the corpus already). None without a recall model."""
    if encoder is None:
        return None
    cosines = {}
    for fold, mine in by_fold(args, queries, fold_of):
        if not fold:
            vectors = encoder.encode(mine)
            for query, vector in zip(mine, vectors):
                cosines[query] = np.array([float(np.dot(stored, vector)) for _, stored in candidates[query]])
            continue
        model = fold_encoder(args, fold)
        known = (embedded or {}).get(fold, {})
        texts = [t for t in dict.fromkeys(h.text for q in mine for h, _ in candidates[q]) if t not in known]
        docs = {**known, **dict(zip(texts, model.encode(texts, role="doc")))} if texts else known
        for query, vector in zip(mine, model.encode(mine)):
            cosines[query] = np.array([float(docs[h.text] @ vector) for h, _ in candidates[query]])
        logger.info(
            f"fold {fold}: {len(mine)} held-out queries, {len(texts)} candidate texts embedded by {model.source}"
        )
    return cosines


def dense_tops(args, queries, fold_of, searcher, encoder, corpus_texts, top_k, embedded=None):
    """Each held-out query's dense top_k over the whole collection, [(Hit, cosine), ...], by the recall model that never
    trained on it: the served --model_dir through the collection (its stored vectors, as the search system serves it),
    or a fold model (cross-fitting) over its own embedding of every corpus text (kept in `embedded`, a dict given,
    as {fold: {text: vector}} for dense_cosines: the corpus embedded once)."""
    tops = {}
    for fold, mine in by_fold(args, queries, fold_of):
        if not fold:
            vectors = encoder.encode(mine)
            for query, vector, found in zip(mine, vectors, searcher.search_vectors(vectors, top_k, with_vectors=True)):
                tops[query] = [(hit, float(np.dot(stored, vector))) for hit, stored in found]
            continue
        model = fold_encoder(args, fold)
        docs = model.encode(corpus_texts, role="doc")
        if embedded is not None:
            embedded[fold] = dict(zip(corpus_texts, docs))
        for query, vector in zip(mine, model.encode(mine)):
            cosines = docs @ vector
            best = np.argsort(-cosines, kind="stable")[:top_k]
            tops[query] = [(Hit(int(row), float(cosines[row]), corpus_texts[row]), float(cosines[row])) for row in best]
        logger.info(f"fold {fold}: the corpus ({len(corpus_texts)} texts) embedded by {model.source}")
    return tops


def fit_neural(
    args, heldout, fold_of, candidates, data, lexical, lexical_booster, stats, encoder, reranker, where, tops, embedded
):
    """The neural tier on the held-out queries: (winner with its GroupedData and its "dense_candidates", or None;
    rows of the CV table). Over BM25's candidates every neural set; over BM25's united with the dense leg's top k
    (each k of --dense_candidates, with `tops` from dense_tops) the sets without the lexical model's score (it is out
    of fold on BM25's candidates only). embedded: the fold models' corpus embeddings dense_tops kept."""
    queries = list(heldout)
    # the lexical score of a held-out query: out of fold when it was a training query of the lexical model
    position = {q: i for i, q in enumerate(data.queries)}
    oof = (
        out_of_fold_scores(data.select_features(lexical["features"]), lexical["params"], args.folds, args.seed)
        if lexical
        else None
    )
    cosines = dense_cosines(args, queries, fold_of, candidates, encoder, embedded)
    features, labels = [], []
    for query in queries:
        found = candidates[query]
        hits = [h for h, _ in found]
        bm25 = np.array([h.score for h in hits], dtype=np.float64)
        if query in position:
            matrix = data.features[position[query]]
        else:
            matrix = learn.build_grouped_data([query], [[h.text for h in hits]], [bm25], [heldout[query]], stats)
            matrix = matrix.features[0]
        if not lexical:
            score = bm25
        elif query in position:
            score = oof[position[query]]
        else:
            columns = [FEATURES.index(name) for name in lexical["features"]]
            score = lexical_booster.predict(matrix[:, columns], num_threads=1)
        cosine = cosines[query] if cosines is not None else None
        logits = rerank_logits(reranker, query, [h.text for h in hits]) if reranker is not None and hits else None
        names = (
            ["lexical_score"]
            + (["cosine", "cosine_rank", "cosine_gap", "rank_fusion"] if cosine is not None else [])
            + (["rerank_logit"] if logits is not None else [])
            + FEATURES
        )
        features.append(neural_matrix(names, score, cosine, logits, matrix) if hits else np.zeros((0, len(names))))
        labels.append(np.array([int(h.text in heldout[query]) for h in hits], dtype=np.int32))
    neural_data = learn.GroupedData(features, labels, queries, names)
    check_gold_found(neural_data, " ".join(args.heldout_file), args, where)
    sets = {name: f for name, f in NEURAL_SETS.items() if set(f) <= set(names)}
    bm25_ranks = learn.baseline_ranks(neural_data)
    lexical_ranks = np.array([learn.gold_rank(x[:, 0], y) for x, y in zip(features, labels)])
    baseline = f"held-out queries: lexical {'model' if lexical else 'BM25'} alone (out of fold)"
    rows = [
        dict(cv_row("neural", "held-out queries: BM25 alone", bm25_ranks, bm25_ranks), chosen=False),
        cv_row("neural", baseline, lexical_ranks, bm25_ranks),
    ]
    grids = tier_grids(args.grid)
    tried, set_rows = cross_validate_sets(
        "neural", neural_data, sets, grids["neural"], bm25_ranks, args.folds, args.seed, lexical_grid=grids["lexical"]
    )
    for entry in tried:
        entry.update(data=neural_data, dense_candidates=0)
    rows += set_rows
    for k in (k for k in args.dense_candidates if k and cosines is not None):
        united_data = united_neural_data(queries, candidates, cosines, tops, k, heldout, stats)
        united_sets = {
            f"{name}, + dense top {k}": f for name, f in sets.items() if not {"lexical_score", "rerank_logit"} & set(f)
        }
        more, more_rows = cross_validate_sets(
            "neural",
            united_data,
            united_sets,
            grids["neural"],
            bm25_ranks,
            args.folds,
            args.seed,
            lexical_grid=grids["lexical"],
        )
        for entry in more:
            entry.update(data=united_data, dense_candidates=k)
        tried += more
        rows += more_rows
    return keep_best("neural", tried, rows, baseline, lexical_ranks), rows


def united_neural_data(queries, candidates, cosines, tops, k, heldout, stats):
    """The neural inputs over BM25's candidates united with the dense leg's top k (search.ranking.united_pool, as the
    search system unites them): every lexical feature and the dense cosine of each candidate."""
    names = [*DENSE, *FEATURES]
    features, labels = [], []
    for query in queries:
        bm25_found = [(hit, cosine) for (hit, _), cosine in zip(candidates[query], cosines[query])]
        pool = united_pool(bm25_found, tops[query][:k])
        hits = [hit for hit, _ in pool]
        bm25 = np.array([hit.score for hit in hits], dtype=np.float64)
        cosine = np.array([c for _, c in pool], dtype=np.float64)
        matrix = lexical_features(query, [hit.text for hit in hits], bm25, stats)
        # no lexical score among these inputs (neural_matrix's first argument only feeds rank_fusion, not asked for)
        features.append(neural_matrix(names, bm25, cosine, None, matrix))
        labels.append(np.array([int(hit.text in heldout[query]) for hit in hits], dtype=np.int32))
    return learn.GroupedData(features, labels, list(queries), names)


def write_ranking(output_dir, spec, stats, boosters):
    """The ranking directory: ranking.json (spec + each model's feature importance), the statistics, a LightGBM
    text file per model in boosters {"lexical": ..., "neural": ...}. Written aside, then moved in at once: a
    failure never leaves half a ranking, and a reader never sees one."""
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".ranking_", dir=parent)
    try:
        spec = dict(
            spec, stats_file="lexical_stats.json", importance={name: importance(b) for name, b in boosters.items()}
        )
        stats.save(os.path.join(staging, spec["stats_file"]))
        for name, booster in boosters.items():
            learn.save_model(booster, os.path.join(staging, spec[name]["model_file"]))
        # the sha1 of each file: Ranking.load refuses a damaged one, or one of another fit, before LightGBM reads it
        spec["sha1"] = {name: weights_fingerprint(os.path.join(staging, name)) for name in sorted(os.listdir(staging))}
        with open(os.path.join(staging, RANKING_FILE), "w", encoding="utf-8") as f:
            json.dump(spec, f, indent=2, ensure_ascii=False)
        why = replaceable_dir(output_dir, RANKING_FILES)  # checked again: the directory may have changed during the fit
        if why:
            raise BadInputError(f"--output_dir {output_dir}: {why}")
        if os.path.isdir(output_dir):  # empty, or this command's own ranking: only files it wrote are removed
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it was moved in
    return spec


def print_table(table):
    print(f"{'row':<58} {'queries':>7} {'R@1':>6} {'R@10':>6} {'MRR@10':>7} {'vs BM25 (se)':>14}  fixed/broken")
    for row in table:
        mark = " *" if row.get("chosen") else ""
        print(
            f"{row['row'] + mark:<58} {row['queries']:>7} {row['R@1']:>6.2f} {row['R@10']:>6.2f} {row['MRR@10']:>7.2f} "
            f"{row['gain_vs_bm25']:>+7.2f} ({row['gain_se']:.2f})  {row['bm25_failures_fixed']}/{row['bm25_successes_broken']}"
        )


if __name__ == "__main__":
    main()
