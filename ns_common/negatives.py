"""The one hard-negative miner: every stage picks its negatives from a ranking with the same rule.

A query's ranking is its candidate documents best first (BM25 hits, a model's recall, a recall_result
file), optionally with their doc ids and scores. The rule:

  1. Never a gold: a candidate is not a negative of a query when its doc id is one of the query's gold
     ids, or its normalised text (lower case, all whitespace removed: `normalise_text`) equals the
     normalised text of one of the query's gold documents. Empty texts are skipped, and each normalised
     text is taken once.
  2. Below the gold: when a gold is in the ranking, negatives come only from the candidates ranked after
     the best-ranked gold; with scores, also only from those scored strictly below it (a candidate tied
     with the gold is not ranked below it: the order among ties is arbitrary). What the ranking puts
     above the gold is most likely an unlabelled positive (a false negative). When no gold is in the
     ranking, every candidate is eligible, from the top. (`below_gold=False`: every candidate anyway.)
  3. The pick: the eligible candidates in ranking order, cut to the first `pool` of them (all when
     `pool` is None), then the first `n_neg` ("hardest") or `n_neg` drawn at random without
     replacement (a seeded random.Random the caller shares across its queries). Fewer than `n_neg`
     only when fewer are eligible.

Used by inbatch_negative/mine_hard_negatives.py (BM25 or model recall), ernie_matching/mine_pairwise.py
(a recall_result file) and ns_common.bm25.lexical_negatives (the layout's sort/ files).
"""


def normalise_text(text):
    """The key under which two texts are the same document: case and whitespace don't count."""
    return "".join(text.lower().split())


def eligible_negatives(texts, gold_texts=(), *, ids=None, gold_ids=(), scores=None, below_gold=True):
    """Rules 1 and 2: positions in `texts` (best first) that may be negatives, in ranking order, and the
    rank (position) of the best-ranked gold, None when no gold is in the ranking."""
    gold_keys = {normalise_text(t) for t in gold_texts}
    gold_ids = set(gold_ids)
    keys = [normalise_text(t) for t in texts]
    is_gold = [key in gold_keys or (ids is not None and ids[i] in gold_ids) for i, key in enumerate(keys)]
    gold_rank = next((i for i, gold in enumerate(is_gold) if gold), None)
    start = gold_rank + 1 if below_gold and gold_rank is not None else 0
    tied = scores is not None and below_gold and gold_rank is not None
    out, seen = [], set()
    for i in range(start, len(texts)):
        if is_gold[i] or not keys[i] or keys[i] in seen or (tied and scores[i] >= scores[gold_rank]):
            continue
        seen.add(keys[i])
        out.append(i)
    return out, gold_rank


def pick(candidates, n_neg, pool=None, hardest=False, rng=None):
    """Rule 3: the first `pool` candidates, then the first `n_neg` of them or `n_neg` drawn with `rng`."""
    pool = candidates[:pool] if pool is not None else candidates
    k = min(n_neg, len(pool))
    return pool[:k] if hardest else rng.sample(pool, k)


def mine_negatives(
    texts, gold_texts, n_neg, *, ids=None, gold_ids=(), scores=None, below_gold=True, pool=None, hardest=False, rng=None
):
    """The negatives of one query from its ranking `texts` (best first): (positions in `texts`, gold rank
    or None). ids/scores: the ranking's doc ids / scores, parallel to `texts` (optional)."""
    candidates, gold_rank = eligible_negatives(
        texts, gold_texts, ids=ids, gold_ids=gold_ids, scores=scores, below_gold=below_gold
    )
    return pick(candidates, n_neg, pool, hardest, rng), gold_rank
