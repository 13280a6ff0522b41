"""The one hard-negative rule (ns_common/negatives.py) on hand-made rankings, and its BM25 caller."""

import random

from ns_common.bm25 import BM25Index, lexical_negatives
from ns_common.negatives import eligible_negatives, mine_negatives, normalise_text


def texts_at(texts, positions):
    return [texts[i] for i in positions]


def test_normalised_text_ignores_case_and_whitespace():
    assert normalise_text(" Deep  Learning\tCNN ") == normalise_text("deeplearning cnn") == "deeplearningcnn"


def test_gold_is_excluded_by_id_and_by_normalised_duplicate_text():
    texts = ["gold", "a", "Gold ", "b", "other gold", "a"]
    ids = [7, 1, 8, 2, 9, 1]
    # doc 9 is a second gold known by id only; "Gold " is a copy of the gold text; "a" comes twice
    eligible, gold_rank = eligible_negatives(texts, ["gold"], ids=ids, gold_ids={7, 9}, below_gold=False)
    assert gold_rank == 0
    assert texts_at(texts, eligible) == ["a", "b"]


def test_only_candidates_ranked_below_the_best_ranked_gold():
    texts = ["above1", "above2", "gold", "below1", "gold2", "below2"]
    eligible, gold_rank = eligible_negatives(texts, ["gold", "gold2"])
    assert gold_rank == 2
    assert texts_at(texts, eligible) == ["below1", "below2"]
    # below_gold=False: what the ranking put above the gold too, still never a gold
    eligible, _ = eligible_negatives(texts, ["gold", "gold2"], below_gold=False)
    assert texts_at(texts, eligible) == ["above1", "above2", "below1", "below2"]


def test_a_candidate_tied_with_the_gold_is_not_below_it():
    texts = ["gold", "tied", "below"]
    eligible, _ = eligible_negatives(texts, ["gold"], scores=[0.5, 0.5, 0.4])
    assert texts_at(texts, eligible) == ["below"]
    eligible, _ = eligible_negatives(texts, ["gold"])  # without scores, ranks only
    assert texts_at(texts, eligible) == ["tied", "below"]


def test_gold_not_in_the_ranking_takes_negatives_from_the_top():
    texts = ["top1", "", "top2", "top3"]
    chosen, gold_rank = mine_negatives(texts, ["gold"], 2, scores=[3.0, 2.0, 1.0, 0.5], hardest=True)
    assert gold_rank is None
    assert texts_at(texts, chosen) == ["top1", "top2"]  # an empty text is never a negative


def test_the_requested_count_from_the_pool():
    texts = ["gold"] + [f"n{i}" for i in range(10)]
    chosen, _ = mine_negatives(texts, ["gold"], 3, hardest=True)
    assert texts_at(texts, chosen) == ["n0", "n1", "n2"]
    # random: n_neg distinct draws among the first `pool` eligible candidates, reproducible with the seed
    runs = [mine_negatives(texts, ["gold"], 3, pool=4, rng=random.Random(5))[0] for _ in range(2)]
    assert runs[0] == runs[1] and len(set(runs[0])) == 3
    assert set(texts_at(texts, runs[0])) <= {"n0", "n1", "n2", "n3"}
    # fewer eligible than asked: all of them, no repeats
    chosen, _ = mine_negatives(["a", "gold", "b"], ["gold"], 4, rng=random.Random(0))
    assert texts_at(["a", "gold", "b"], chosen) == ["b"]


def test_lexical_negatives_follow_the_rule():
    docs = ["图像 识别 方法", "图像 识别", "图像识别 方法", "图像 分割", "文本 分类", "语音 识别"]
    index = BM25Index(docs)
    # BM25 ranks: 图像 识别 > 图像 识别 方法 (the gold) > 图像识别 方法 (its normalised copy) > 语音 识别 = 图像 分割 > 文本 分类
    negs = lexical_negatives(index, ["图像 识别"], [0], n_neg=3, pool=3, seed=1)[0]
    assert sorted(negs) == [3, 4, 5]  # not the title above the gold, not the gold's copy below it
