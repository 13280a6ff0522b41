"""Retrieval and ranking metrics: Recall@K, MRR@K, nDCG@K over ranked lists, and AUC."""

import numpy as np

DEFAULT_KS = (1, 5, 10, 20, 50)


def retrieval_metrics(ranked_docs, gold_docs, ks=DEFAULT_KS, mrr_k=10, ndcg_k=10):
    """ranked_docs: one ranked list of doc texts (or ids) per query; gold_docs: a set (or single item)
    of relevant docs per query. Every query counts, also those with an empty ranked list.

    Returns {"recall@1": .., ..., "mrr@10": .., "ndcg@10": .., "queries": n} with values in percent.
    """
    if len(ranked_docs) != len(gold_docs):
        raise ValueError(f"{len(ranked_docs)} ranked lists for {len(gold_docs)} queries")
    n = len(gold_docs)
    if n == 0:
        raise ValueError("no queries to evaluate")
    hits = {k: 0 for k in ks}
    mrr = 0.0
    ndcg = 0.0
    for ranked, gold in zip(ranked_docs, gold_docs):
        gold = gold if isinstance(gold, (set, frozenset)) else {gold}
        first = next((i for i, d in enumerate(ranked) if d in gold), None)
        for k in ks:
            # Recall@K: share of queries whose gold doc is among the top K
            if first is not None and first < k:
                hits[k] += 1
        if first is not None and first < mrr_k:
            mrr += 1.0 / (first + 1)
        dcg = sum(1.0 / np.log2(i + 2) for i, d in enumerate(ranked[:ndcg_k]) if d in gold)
        idcg = sum(1.0 / np.log2(i + 2) for i in range(min(len(gold), ndcg_k)))
        ndcg += float(dcg / idcg)
    result = {f"recall@{k}": 100.0 * hits[k] / n for k in ks}
    result[f"mrr@{mrr_k}"] = 100.0 * mrr / n
    result[f"ndcg@{ndcg_k}"] = 100.0 * ndcg / n
    result["queries"] = n
    return result


def auc(labels, scores):
    """Area under the ROC curve, ties counted half (the Mann-Whitney U statistic)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs positives and negatives (got {n_pos} positive, {n_neg} negative)")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average rank (1-based) for tied scores
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def format_metrics(name, metrics):
    """One table line: name followed by every metric, e.g. for the results file."""
    cells = [f"{k}={v:.2f}" for k, v in metrics.items() if k != "queries"]
    return f"{name}\t" + "\t".join(cells) + f"\tqueries={metrics.get('queries', '')}"
