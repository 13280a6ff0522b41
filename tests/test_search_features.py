"""search/: the lexical features of the learned fine ranking and its learning library, on the bundled sample.

Real computations throughout (no mocks): BM25 candidates from ns_common.bm25, features, LightGBM fits.
"""

import os

import numpy as np
import pytest

from ns_common.bm25 import BM25Index, joined_char_ngrams
from ns_common.io import read_corpus, read_similar_pairs
from search import learn
from search.features import FEATURES, CorpusMismatchError, LexicalStats, lexical_features

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "sample", "recall")
SMALL_MODEL = {"n_trees": 20, "num_leaves": 4, "learning_rate": 0.1, "min_child_samples": 5}


@pytest.fixture(scope="module")
def corpus():
    return read_corpus(os.path.join(SAMPLE, "corpus.csv"))


@pytest.fixture(scope="module")
def stats(corpus):
    return LexicalStats.from_texts(corpus)


@pytest.fixture(scope="module")
def train_data(corpus, stats):
    """The sample's training queries with BM25's top 20 (joined character n-grams, k1 0.9, b 1.0)."""
    queries, gold = read_similar_pairs(os.path.join(SAMPLE, "train.csv"))
    ids, scores = BM25Index(corpus, tokenizer=joined_char_ngrams, k1=0.9, b=1.0).search(queries, k=20)
    texts = [[corpus[i] for i in row] for row in ids]
    return learn.build_grouped_data(queries, texts, scores, [gold[q] for q in queries], stats)


def column(x, name):
    return x[:, FEATURES.index(name)]


def test_keyword_coverage_on_hand_made_titles(stats):
    query = "卷积神经网络 图像识别"
    titles = [
        "基于卷积神经网络的图像识别方法",  # both keywords whole
        "图像识别中的神经网络",  # the second whole, the first by some of its bigrams
        "土壤重金属污染评价",
    ]  # neither
    x = lexical_features(query, titles, [3.0, 2.0, 1.0], stats)
    assert x.shape == (3, len(FEATURES)) and x.dtype == np.float64
    np.testing.assert_array_equal(column(x, "kw_whole"), [2, 1, 0])
    np.testing.assert_array_equal(column(x, "kw_whole_frac"), [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(column(x, "kw_cov_mean")[[0, 2]], [1.0, 0.0])
    # 卷积神经网络: bigrams 卷积 积神 神经 经网 网络, of which 神经 经网 网络 are in the second title
    assert column(x, "kw1_cov")[1] == pytest.approx(3 / 5)
    assert column(x, "kw_cov_mean")[1] == pytest.approx((3 / 5 + 1) / 2)
    assert column(x, "kw_pos_cov")[1] == pytest.approx((3 / 5 + 1 / 2) / (1 + 1 / 2))
    np.testing.assert_array_equal(column(x, "kw_any_frac"), [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(column(x, "kw1_pos"), [2 / 15, 1.0, 1.0])  # 卷积 at index 2 of 15 chars
    np.testing.assert_array_equal(column(x, "title_len"), [15, 10, 9])
    np.testing.assert_array_equal(column(x, "n_keywords"), [2, 2, 2])
    np.testing.assert_array_equal(column(x, "bm25_rank"), [1, 2, 3])
    np.testing.assert_allclose(column(x, "bm25_rel"), [1.0, 2 / 3, 1 / 3])
    assert column(x, "bm25_bi")[0] > column(x, "bm25_bi")[1] > column(x, "bm25_bi")[2] == 0.0


def test_case_space_and_single_character_keywords(stats):
    """Keywords match the title lower-cased with its spaces removed; a one-character keyword is its own gram."""
    x = lexical_features("CNN 网", ["A cnn 网络", "其他"], [2.0, 1.0], stats)
    np.testing.assert_array_equal(column(x, "kw_whole"), [2, 0])
    np.testing.assert_array_equal(column(x, "kw_cov_mean"), [1.0, 0.0])


def test_bm25_scale_does_not_change_features(corpus, stats):
    """Only ratios and order of the given scores are used: Milvus' (k1 + 1) times larger scores are fine."""
    ids, scores = BM25Index(corpus, tokenizer=joined_char_ngrams, k1=0.9, b=1.0).search(["知识产权保护 侵权责任"], k=10)
    texts = [corpus[i] for i in ids[0]]
    np.testing.assert_allclose(
        lexical_features("知识产权保护 侵权责任", texts, scores[0], stats),
        lexical_features("知识产权保护 侵权责任", texts, scores[0] * 1.9, stats),
        rtol=1e-6,
    )


def test_empty_inputs_and_mismatched_lengths(stats):
    assert lexical_features("知识产权保护", [], [], stats).shape == (0, len(FEATURES))
    assert np.isfinite(lexical_features("", ["某个标题"], [0.0], stats)).all()
    with pytest.raises(ValueError):
        lexical_features("知识产权保护", ["a", "b"], [1.0], stats)


def test_stats_round_trip_is_identical_and_deterministic(corpus, stats, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    stats.save(first)
    LexicalStats.from_texts(corpus).save(second)
    assert first.read_bytes() == second.read_bytes()
    loaded = LexicalStats.load(first)
    loaded.check_corpus(corpus)
    titles = corpus[:30]
    query = "知识产权保护 侵权责任 比例原则 案例分析"
    np.testing.assert_array_equal(
        lexical_features(query, titles, np.linspace(9, 1, 30), stats),
        lexical_features(query, titles, np.linspace(9, 1, 30), loaded),
    )
    with pytest.raises(CorpusMismatchError):
        loaded.check_corpus(corpus[:-1])


def test_ranks_and_metrics_definitions():
    assert learn.gold_rank([0.1, 0.9, 0.5], [0, 0, 1]) == 2
    assert learn.gold_rank([0.5, 0.5], [0, 1]) == 2  # a tie keeps BM25's order
    assert learn.gold_rank([1.0, 2.0], [0, 0]) == np.inf
    metrics = learn.ranking_metrics([1, 2, 11, np.inf])
    assert metrics["R@1"] == 25.0 and metrics["R@10"] == 50.0
    assert metrics["MRR@10"] == pytest.approx(100 * (1 + 0.5) / 4)
    paired = learn.paired_comparison([1, 1, 3, 1], [1, 2, 1, 1])
    assert (paired["fixed"], paired["broken"]) == (1, 1)
    assert paired["rr_gain"] == pytest.approx(100 * (0.5 - 2 / 3) / 4)


def test_cross_validation_gives_one_rank_per_query(train_data):
    ranks = learn.cross_validate(train_data, SMALL_MODEL, n_folds=3, seed=0)
    assert ranks.shape == (len(train_data),)
    assert np.all((ranks >= 1) | np.isinf(ranks))
    assert np.all(np.isinf(ranks) == ~train_data.has_gold())  # a gold not retrieved is a miss
    np.testing.assert_array_equal(ranks, learn.cross_validate(train_data, SMALL_MODEL, n_folds=3, seed=0))


def test_learner_is_deterministic_and_explains_its_scores(train_data, tmp_path):
    first = learn.fit_ranker(train_data, SMALL_MODEL)
    second = learn.fit_ranker(train_data, SMALL_MODEL)
    assert first.model_to_string() == second.model_to_string()
    path = tmp_path / "ranker.txt"
    learn.save_model(first, str(path))
    loaded = learn.load_model(str(path))
    x = train_data.features[0]
    np.testing.assert_allclose(loaded.predict(x), first.predict(x))
    contributions = learn.feature_contributions(loaded, x)
    assert contributions.shape == (len(x), len(FEATURES) + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), first.predict(x), rtol=1e-6, atol=1e-9)


def test_hyperparameter_selection_scores_every_combination(train_data):
    grid = {"n_trees": (5, 10), "num_leaves": (3,), "learning_rate": (0.1,), "min_child_samples": (5,)}
    best, table = learn.select_hyperparameters(train_data, grid, n_folds=3)
    assert len(table) == 2 and best in [params for params, _ in table]
    assert max(m["MRR@10"] for _, m in table) == dict((str(p), m) for p, m in table)[str(best)]["MRR@10"]


def test_neural_matrix_dense_columns():
    """The dense columns of the neural tier: the cosine's 1-based rank, its gap to the best candidate's and the
    reciprocal-rank fusion of the lexical and the dense orders (k = 60)."""
    from search.system import RRF_K, neural_matrix

    lexical = np.array([3.0, 1.0, 2.0])
    cosine = np.array([0.5, 0.9, 0.7])
    names = ["lexical_score", "cosine", "cosine_rank", "cosine_gap", "rank_fusion"]
    m = neural_matrix(names, lexical, cosine)
    assert m[:, 2].tolist() == [3.0, 1.0, 2.0]
    assert np.allclose(m[:, 3], [-0.4, 0.0, -0.2])
    lexical_rank = np.array([1.0, 3.0, 2.0])
    assert np.allclose(m[:, 4], 1 / (RRF_K + lexical_rank) + 1 / (RRF_K + m[:, 2]))
    # the candidate best in both orders gets the largest fusion; one absent signal drops its columns
    assert neural_matrix(["lexical_score"], lexical).shape == (3, 1)
