"""Fits the search system's fusion and final-ranking weights on held-out training queries, by k-fold
cross-validation, and writes them to ranking.json (read by query.py, the web service and the pipeline):

    python -m recall.milvus.fit_ranking --model_dir output/pipeline/sample/export/recall \
        --reranker_dir output/pipeline/sample/export/reranker --query_file output/pipeline/sample/split/train_fit.csv \
        --uri output/pipeline/sample/milvus/neural_search.db

Each stage (fusion, then final ranking) is a listwise logistic model: for a query, softmax over its candidates
of weights . features, the gold candidate as the target. Its L2 strength is picked by k-fold cross-validation
over the queries (folds by query, seeded); then the cross-validated MRR@10 of the fitted model is compared with
each single signal's (fusion: BM25 alone, dense alone, RRF of both; final: the fusion alone, the reranker
alone). The fitted model is kept only when its gain over the best of them is positive and at least one
standard error of the per-query difference (the one-standard-error rule: a few hundred queries are noisy, and
the simpler signal is preferred unless the evidence is clear); so the fusion never chooses to fall below its
strongest leg. The query file must not hold queries the models were trained on (data/split_train.py), nor dev.
"""
import argparse
import json
import os
import random
import time

import numpy as np
from scipy.optimize import minimize

from ns_common.cli import check_files
from ns_common.metrics import retrieval_metrics
from ns_common.utils import fail, logger
from recall.milvus.config import add_config_args, load_config
from recall.milvus.data import read_queries
from recall.milvus.model import TextEncoder, add_model_args, check_model_args
from recall.milvus.ranking import (FINAL_CANDIDATES, FINAL_FEATURES, FUSION_FEATURES, feature_matrix, file_fingerprint,
                                   order, recall_candidates, rerank_logits)
from recall.milvus.search import MilvusSearcher

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def fit_listwise(matrices, golds, l2):
    """Weights minimising the mean softmax cross-entropy of the gold candidates + l2 * |w|^2.
    matrices: [n_i, F] feature arrays; golds: the gold row of each (queries whose gold is absent are left out)."""
    data = [(X, g) for X, g in zip(matrices, golds) if g is not None]
    n_features = matrices[0].shape[1]
    if not data:
        return np.zeros(n_features)

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for X, g in data:
            s = X @ w
            s -= s.max()
            p = np.exp(s)
            p /= p.sum()
            total -= np.log(max(p[g], 1e-300))
            grad -= X[g] - p @ X
        return total / len(data) + l2 * w @ w, grad / len(data) + 2 * l2 * w

    return minimize(loss, np.zeros(n_features), jac=True, method="L-BFGS-B").x


def gold_ranks(lists, golds, weights, names):
    """1-based rank of each query's gold under weights (None: not among the candidates)."""
    ranks = []
    for cands, gold in zip(lists, golds):
        ids = [c.id for c, _ in order(cands, weights, names)]
        ranks.append(ids.index(gold) + 1 if gold in ids else None)
    return ranks


def metrics(ranks):
    """Recall@1/10/50 and MRR@10 (%) of gold ranks, by the project's metric (ns_common.metrics): a rank r is a
    ranked list whose r-th item is the gold one; None (the gold not among the candidates) an empty list."""
    result = retrieval_metrics([list(range(1, r + 1)) if r else [] for r in ranks], [r or 0 for r in ranks], ks=(1, 10, 50))
    return {k: result[k] for k in ("recall@1", "recall@10", "recall@50", "mrr@10")}


def cross_validate(lists, golds, names, folds, seed):
    """(best l2, cross-validated gold ranks with it): each fold scored by weights fitted on the others."""
    order_q = list(range(len(lists)))
    random.Random(seed).shuffle(order_q)
    fold_of = {q: i % folds for i, q in enumerate(order_q)}
    matrices = [feature_matrix(c, names) for c in lists]
    gold_rows = [gold_index(c, g) for c, g in zip(lists, golds)]
    best = None
    for l2 in L2_GRID:
        ranks = [None] * len(lists)
        for k in range(folds):
            train = [q for q in range(len(lists)) if fold_of[q] != k]
            test = [q for q in range(len(lists)) if fold_of[q] == k]
            w = fit_listwise([matrices[q] for q in train], [gold_rows[q] for q in train], l2)
            for q, r in zip(test, gold_ranks([lists[q] for q in test], [golds[q] for q in test], w, names)):
                ranks[q] = r
        mrr = metrics(ranks)["mrr@10"]
        if best is None or mrr > best[1] + 1e-9:
            best = (l2, mrr, ranks)
    return best[0], best[2]


def paired_gain(ranks, baseline_ranks):
    """Mean and standard error (points of MRR@10) of the per-query reciprocal-rank difference."""
    rr = lambda r: 1.0 / r if r is not None and r <= 10 else 0.0  # noqa: E731
    diff = 100.0 * np.array([rr(a) - rr(b) for a, b in zip(ranks, baseline_ranks)])
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0


def gold_index(cands, gold):
    return next((i for i, c in enumerate(cands) if c.id == gold), None)


def choose(stage, lists, golds, names, baselines, folds, seed, bm25_failures):
    """Fits one stage; returns (its JSON entry, rows of the CV table)."""
    l2, cv_ranks = cross_validate(lists, golds, names, folds, seed)
    rows = {f"{stage}: fitted (cross-validated, l2 {l2:g})": cv_ranks}
    for name, weights in baselines.items():
        rows[f"{stage}: {name}"] = gold_ranks(lists, golds, weights, names)
    best_name = max(baselines, key=lambda name: metrics(rows[f"{stage}: {name}"])["mrr@10"])
    best_weights = baselines[best_name]
    gain, standard_error = paired_gain(cv_ranks, rows[f"{stage}: {best_name}"])
    logger.info(f"{stage}: fitted model vs {best_name}: MRR@10 {gain:+.2f} points (standard error {standard_error:.2f})")
    if gain > 0 and gain >= standard_error:
        weights = fit_listwise([feature_matrix(c, names) for c in lists], [gold_index(c, g) for c, g in zip(lists, golds)], l2)
        chosen = "fitted"
    else:
        weights, chosen = np.asarray(best_weights, dtype=np.float64), best_name
    table = []
    for name, ranks in rows.items():
        m = metrics(ranks)
        fixed = sum(r == 1 for q, r in enumerate(ranks) if q in bm25_failures)
        table.append({"row": name, **{k: round(v, 2) for k, v in m.items()}, "bm25_failures_at_1": fixed})
    entry = {"features": names, "weights": [round(float(w), 6) for w in weights], "chosen": chosen, "l2": l2}
    return entry, table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--query_file", required=True, help="query<TAB>gold doc pairs held out from model training")
    parser.add_argument("--reranker_dir", default=None, help="exported reranker: also fit the final ranking")
    parser.add_argument("--output_file", default=None, help="default: <model_dir>/ranking.json")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds over the query file")
    parser.add_argument("--seed", type=int, default=1000)
    add_model_args(parser, batch_size=64)
    add_config_args(parser, skip=("batch_size",))
    args = parser.parse_args(argv)
    check_model_args(args)
    check_files(("query_file", args.query_file))
    if args.reranker_dir and not os.path.isdir(args.reranker_dir):
        fail(f"--reranker_dir {args.reranker_dir}: no such directory")
    if args.folds < 2:
        fail(f"--folds must be at least 2, got {args.folds}")
    args.output_file = args.output_file or os.path.join(args.model_dir or os.path.dirname(args.params_path), "ranking.json")
    return args


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    queries, golds = read_queries(args.query_file)
    if not golds or len(set(queries)) < args.folds:
        fail(f"--query_file {args.query_file}: need query<TAB>gold lines for at least --folds {args.folds} queries")
    gold_text = dict(zip(queries, golds))
    queries = list(gold_text)
    encoder = TextEncoder.from_args(args)
    reranker = None
    if args.reranker_dir:
        from recall.milvus.query import load_reranker

        reranker = load_reranker(args)
    with MilvusSearcher(load_config(args), encoder, warn_truncation=False) as searcher:
        vectors = encoder.encode(queries)
        lists = recall_candidates(searcher, queries, vectors)
    # the gold is the candidate with the gold text (ids of the stored documents)
    golds = [next((c.id for c in cands if c.text == gold_text[q]), None) for q, cands in zip(queries, lists)]
    bm25_ranks = gold_ranks(lists, golds, [1, 0, 0, 0], FUSION_FEATURES)
    bm25_failures = {q for q, r in enumerate(bm25_ranks) if r != 1}
    baselines = {"BM25 leg": [1, 0, 0, 0], "dense leg": [0, 1, 0, 0], "RRF of both legs": [0, 0, 1, 1]}
    fusion, table = choose("fusion", lists, golds, FUSION_FEATURES, baselines, args.folds, args.seed, bm25_failures)
    ranking = {"fusion": fusion, "final": None, "query_file": args.query_file, "queries": len(queries),
               "bm25_failures": len(bm25_failures), "fitted_with": {"recall_model": file_fingerprint(args.model_dir or "")}}
    if reranker is not None:
        heads = []
        for query, cands in zip(queries, lists):
            head = [c for c, _ in order(cands, fusion["weights"], FUSION_FEATURES)[:FINAL_CANDIDATES]]
            rerank_logits(reranker, query, head)
            heads.append(head)
        final_baselines = {"fusion only": fusion["weights"] + [0.0], "reranker only": [0, 0, 0, 0, 1]}
        ranking["final"], final_table = choose("final", heads, golds, FINAL_FEATURES, final_baselines, args.folds, args.seed, bm25_failures)
        ranking["fitted_with"]["reranker"] = file_fingerprint(args.reranker_dir)
        table += final_table
    ranking["cross_validation"] = table
    os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
    with open(args.output_file, "w", encoding="utf-8") as f:
        json.dump(ranking, f, indent=2, ensure_ascii=False)
    print(f"{'row':<48} {'R@1':>6} {'R@10':>6} {'R@50':>6} {'MRR@10':>7}  BM25 failures fixed")
    for row in table:
        print(f"{row['row']:<48} {row['recall@1']:>6.1f} {row['recall@10']:>6.1f} {row['recall@50']:>6.1f} {row['mrr@10']:>7.1f}  "
              f"{row['bm25_failures_at_1']}/{len(bm25_failures)}")
    logger.info(f"fitted on {len(queries)} queries ({args.folds}-fold CV) in {time.time() - start:.1f}s: fusion {fusion['chosen']}"
                f"{', final ' + ranking['final']['chosen'] if ranking['final'] else ''} -> {args.output_file}")


if __name__ == "__main__":
    main()
