"""LambdaMART (LightGBM lambdarank) re-ranking of BM25's top candidates: the learning library.

Data are grouped by query: a query's candidates (BM25's top list, best first), their feature rows, and
label 1 for a gold title, 0 otherwise. A query whose gold is not among its candidates teaches nothing
(it is left out of training) but counts as a miss in every evaluation. Evaluation is by the gold's rank:
the position of the first gold in the list as ordered by the model (ties keep BM25's order), np.inf for a
miss; R@k counts a rank r <= k, MRR@10 averages 1/r over ranks r <= 10 (0 otherwise), both in %.

Everything is deterministic: LightGBM runs with deterministic=True, force_row_wise=True, fixed seeds and
at most two threads, and folds come from a seeded shuffle, so the same inputs give the same model text.
"""

import itertools
import os
from dataclasses import dataclass, field

import numpy as np

from ns_common.errors import ModelMismatchError
from ns_common.io import weights_fingerprint
from search.features import FEATURES, lexical_features

# select_hyperparameters' choice over DEFAULT_GRID for FEATURES on CSL's 800 training queries (mean CV MRR@10 over
# fold seeds 0-2: 94.44; the reference 100 trees x 7 leaves: 94.43, within noise); larger models overfit
DEFAULT_PARAMS = {"n_trees": 200, "num_leaves": 4, "learning_rate": 0.05, "min_child_samples": 50}
# fixed: row and feature subsampling as the reference; lambdarank's pairs only where one side is in the top 20
FIXED_PARAMS = {"bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8, "lambdarank_truncation_level": 20}
# the grid select_hyperparameters scores by cross-validated MRR@10
DEFAULT_GRID = {
    "n_trees": (100, 200, 400),
    "num_leaves": (4, 7, 15),
    "learning_rate": (0.05, 0.1),
    "min_child_samples": (20, 50),
}
RECALL_KS = (1, 5, 10)


@dataclass
class GroupedData:
    """Per-query feature matrices and labels, candidates in BM25 order (best first).

    features[i]: [n_i, len(feature_names)] float64; labels[i]: [n_i] int (1 for a gold title);
    queries[i]: the query text. n_i may be 0 (nothing retrieved).
    """

    features: list
    labels: list
    queries: list = field(default_factory=list)
    feature_names: list = field(default_factory=lambda: list(FEATURES))

    def __len__(self):
        return len(self.labels)

    def has_gold(self):
        """[n_queries] bool: the query's gold is among its candidates (only those train)."""
        return np.array([bool(np.any(y > 0)) for y in self.labels])

    def subset(self, indices):
        indices = list(indices)
        return GroupedData(
            [self.features[i] for i in indices],
            [self.labels[i] for i in indices],
            [self.queries[i] for i in indices] if self.queries else [],
            list(self.feature_names),
        )

    def select_features(self, names):
        """The same queries with only the named feature columns, in the given order."""
        columns = [self.feature_names.index(name) for name in names]
        return GroupedData([x[:, columns] for x in self.features], self.labels, self.queries, list(names))


def build_grouped_data(queries, candidate_texts, candidate_scores, gold, stats, feature_fn=lexical_features):
    """Features and labels of each query's candidates.

    queries: list of query texts; candidate_texts[i] / candidate_scores[i]: the i-th query's candidates and
    their BM25 scores, best first; gold[i]: the gold title (a str) or a set of gold titles;
    feature_fn(query, texts, scores, stats) -> [n, F] (lexical_features by default).
    """
    if not len(queries) == len(candidate_texts) == len(candidate_scores) == len(gold):
        raise ValueError("queries, candidate_texts, candidate_scores and gold must have the same length")
    features, labels = [], []
    for query, texts, scores, golds in zip(queries, candidate_texts, candidate_scores, gold):
        golds = {golds} if isinstance(golds, str) else set(golds)
        features.append(np.asarray(feature_fn(query, list(texts), scores, stats), dtype=np.float64))
        labels.append(np.array([int(t in golds) for t in texts], dtype=np.int32))
    return GroupedData(features, labels, list(queries))


def gold_rank(scores, labels):
    """Rank (1-based) of the first gold under `scores` (higher first; ties keep the given order), inf if none."""
    labels = np.asarray(labels)
    if not np.any(labels > 0):
        return np.inf
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return float(np.flatnonzero(labels[order] > 0)[0] + 1)


def baseline_ranks(data):
    """Gold ranks of the candidates' own order (BM25 alone)."""
    return np.array([gold_rank(-np.arange(len(y)), y) for y in data.labels])


def ranking_metrics(ranks, ks=RECALL_KS, mrr_k=10):
    """{"R@k": %, ..., "MRR@10": %} of gold ranks (np.inf = miss)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("no ranks to score")
    metrics = {f"R@{k}": 100.0 * float(np.mean(ranks <= k)) for k in ks}
    metrics[f"MRR@{mrr_k}"] = 100.0 * float(np.mean(np.where(ranks <= mrr_k, 1.0 / ranks, 0.0)))
    return metrics


def lightgbm_params(params=None, seed=0, n_jobs=1):
    """LightGBM's lambdarank parameters (deterministic) from our short names; returns (params, n_trees)."""
    p = dict(DEFAULT_PARAMS, **(params or {}))
    if n_jobs > 2:
        raise ValueError("n_jobs above 2 is not allowed: the machine's other jobs need the cores")
    lgb_params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "num_leaves": int(p["num_leaves"]),
        "learning_rate": float(p["learning_rate"]),
        "min_data_in_leaf": int(p["min_child_samples"]),
        **FIXED_PARAMS,
        "seed": seed,
        "bagging_seed": seed + 1,
        "feature_fraction_seed": seed + 2,
        "data_random_seed": seed + 3,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": n_jobs,
        "verbose": -1,
    }
    for key, value in p.items():  # anything else is passed to LightGBM as is
        if key not in DEFAULT_PARAMS:
            lgb_params[key] = value
    return lgb_params, int(p["n_trees"])


def fit_ranker(data, params=None, seed=0, n_jobs=1):
    """A LightGBM Booster fitted on the queries of `data` whose gold is among their candidates."""
    import lightgbm as lgb

    train = data.subset(np.flatnonzero(data.has_gold()))
    if len(train) == 0:
        raise ValueError("no query has its gold among its candidates: nothing to learn from")
    lgb_params, n_trees = lightgbm_params(params, seed, n_jobs)
    dataset = lgb.Dataset(
        np.concatenate(train.features),
        np.concatenate(train.labels),
        group=[len(y) for y in train.labels],
        feature_name=list(data.feature_names),
        free_raw_data=True,
        params={"verbose": -1},
    )
    return lgb.train(lgb_params, dataset, num_boost_round=n_trees)


def score_groups(booster, data):
    """The model's score of every candidate, one array per query."""
    sizes = [len(y) for y in data.labels]
    if sum(sizes) == 0:
        return [np.zeros(0) for _ in sizes]
    scores = booster.predict(np.concatenate([x for x in data.features if len(x)]), num_threads=1)
    return np.split(scores, np.cumsum(sizes)[:-1])


def model_ranks(booster, data):
    """Gold ranks of the candidates re-ordered by the model."""
    return np.array([gold_rank(s, y) for s, y in zip(score_groups(booster, data), data.labels)])


def fold_assignment(n_queries, n_folds=5, seed=0):
    """[n_queries] fold number of each query: a seeded permutation cut into n_folds near-equal parts."""
    if not 2 <= n_folds <= n_queries:
        raise ValueError(f"need 2 <= n_folds <= n_queries, got {n_folds} folds for {n_queries} queries")
    folds = np.empty(n_queries, dtype=np.int64)
    folds[np.random.RandomState(seed).permutation(n_queries)] = np.arange(n_queries) % n_folds
    return folds


def cross_validate(data, params=None, n_folds=5, seed=0, n_jobs=1):
    """Out-of-fold gold ranks: [n_queries] floats (np.inf = miss), each query ranked by a model fitted on the
    other folds (k-fold by query, folds from a shuffle seeded with `seed`)."""
    folds = fold_assignment(len(data), n_folds, seed)
    ranks = np.full(len(data), np.inf)
    for fold in range(n_folds):
        held_out = np.flatnonzero(folds == fold)
        booster = fit_ranker(data.subset(np.flatnonzero(folds != fold)), params, seed=seed, n_jobs=n_jobs)
        ranks[held_out] = model_ranks(booster, data.subset(held_out))
    return ranks


def parameter_grid(grid=None):
    """Every combination of a {name: values} grid, as a list of dicts (in a fixed order)."""
    grid = DEFAULT_GRID if grid is None else grid
    names = sorted(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def select_hyperparameters(data, grid=None, n_folds=5, seeds=(0,), n_jobs=1, log=None):
    """The grid's parameters with the best cross-validated MRR@10, averaged over the fold shuffles of `seeds`
    (several seeds make the choice less a matter of one split; ties: the earlier combination).

    Returns (best params, table): table is a list of (params, metrics averaged over seeds) in grid order.
    log: optional callable, given each (params, metrics) as it is scored.
    """
    table = []
    for params in parameter_grid(grid):
        runs = [ranking_metrics(cross_validate(data, params, n_folds, seed, n_jobs)) for seed in seeds]
        metrics = {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
        table.append((params, metrics))
        if log is not None:
            log(params, metrics)
    best = max(range(len(table)), key=lambda i: (table[i][1]["MRR@10"], -i))
    return table[best][0], table


def paired_comparison(ranks, reference_ranks, mrr_k=10):
    """The model against a reference (e.g. BM25 alone) on the same queries.

    Returns {"rr_gain": mean per-query reciprocal-rank@mrr_k gain in %, "rr_gain_se": its standard error
    in %, "fixed": queries where the reference misses rank 1 and the model gets it, "broken": the reverse}.
    """
    ranks, reference_ranks = np.asarray(ranks, dtype=np.float64), np.asarray(reference_ranks, dtype=np.float64)
    if ranks.shape != reference_ranks.shape:
        raise ValueError("ranks and reference_ranks must be of the same queries")

    def reciprocal(r):
        return np.where(r <= mrr_k, 1.0 / r, 0.0)

    gain = 100.0 * (reciprocal(ranks) - reciprocal(reference_ranks))
    se = float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else float("nan")
    return {
        "rr_gain": float(gain.mean()),
        "rr_gain_se": se,
        "fixed": int(np.sum((ranks == 1) & (reference_ranks != 1))),
        "broken": int(np.sum((ranks != 1) & (reference_ranks == 1))),
    }


def save_model(booster, path):
    """Writes the model in LightGBM's text format."""
    booster.save_model(path)


def load_model(path):
    import lightgbm as lgb

    return lgb.Booster(model_file=path)


def check_ranking_file(directory, name, checksums, where):
    """The path of file `name` of a ranking directory, when it is the file search.fit wrote: a plain name in the
    directory whose sha1 is the one ranking.json keeps (checksums: {name: sha1}); else ModelMismatchError naming it.
    LightGBM aborts the whole process on a damaged model file (a truncated lexical.txt: SIGABRT), so nothing reaches
    it unchecked, and a valid model of another fit is no longer served silently."""
    if not isinstance(name, str) or not name or os.path.basename(name) != name:
        raise ModelMismatchError(f"{where}: file name {name!r} is not a file of the ranking directory; refit it")
    path = os.path.join(directory, name)
    expected = checksums.get(name) if isinstance(checksums, dict) else None
    if expected is None:
        raise ModelMismatchError(
            f"{where} keeps no checksum of {name} (written by an older search.fit, or edited): refit it (python -m search.fit)"
        )
    found = weights_fingerprint(path) if os.path.isfile(path) else None
    if found != expected:
        what = (
            "missing"
            if found is None
            else "not the file search.fit wrote with it (changed, truncated or of another fit)"
        )
        raise ModelMismatchError(f"{path}: {what}; refit the ranking (python -m search.fit)")
    return path


def load_ranking_model(directory, part, checksums, known_features, where):
    """The LightGBM model of one part of a ranking directory (spec["lexical"] or spec["neural"]: its features and
    model_file), checked before LightGBM reads it (check_ranking_file) and after: it takes exactly the features
    ranking.json lists, known ones, in that order. ModelMismatchError naming the file and what is wrong."""
    features = part.get("features") if isinstance(part, dict) else None
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise ModelMismatchError(f"{where}: features must be a list of feature names, got {features!r}; refit it")
    unknown = sorted(set(features) - set(known_features))
    if unknown or len(set(features)) != len(features):
        why = f"unknown feature {unknown[0]!r}" if unknown else "a feature listed twice"
        raise ModelMismatchError(f"{where}: {why} (known: {', '.join(known_features)}); refit it")
    path = check_ranking_file(directory, part.get("model_file"), checksums, where)
    try:
        booster = load_model(path)
    except Exception as e:  # lightgbm.basic.LightGBMError on a file it cannot parse
        raise ModelMismatchError(f"{path}: not a LightGBM model ({str(e).splitlines()[0]}); refit it") from None
    if booster.feature_name() != features:
        raise ModelMismatchError(
            f"{path} takes the features {booster.feature_name()}, {where} lists {features}: refit the ranking"
        )
    return booster


def feature_contributions(booster, features):
    """[n, F + 1] per-candidate SHAP contributions of each feature to the model's score (last column: the
    expected value); the row sums are the scores. features: [n, F] rows in the model's feature order."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != booster.num_feature():
        raise ValueError(f"features must be [n, {booster.num_feature()}], got {features.shape}")
    return booster.predict(features, pred_contrib=True, num_threads=1)
