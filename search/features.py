"""Lexical-structure features of (query, candidate title) pairs for the learned fine ranking (LambdaMART).

A query is a paper's author keywords joined by spaces; the candidates are BM25's top titles for it, best
first. The features say what BM25 said (relative score, rank, and BM25 under other tokenisations) and how
the title covers the keyword list: each keyword whole or by its bigrams, the first keywords weighted more
(authors list the main topic first), and where the first keyword starts in the title. Which features are
here was chosen by 5-fold cross-validation over CSL's 800 training queries: greedy forward selection from
a reference set of 14 over ~40 candidates (IDF-weighted coverage, longest common substrings, keyword order,
unexplained title, jieba-word coverage, candidate-relative gaps, ...), then backward elimination; the
others did not earn their place.

Text is compared lower-cased with all whitespace removed ("joined", as ns_common.bm25.joined_char_ngrams
does); keywords are the query's whitespace-separated parts, lower-cased. Corpus statistics (document
frequencies, average lengths) come from LexicalStats, built once from the corpus and saved beside the model.

    stats = LexicalStats.from_texts(corpus_titles)          # or LexicalStats.load(path)
    x = lexical_features(query, candidate_titles, bm25_scores, stats)   # [n, len(FEATURES)]
"""

import functools
import hashlib
import json
import logging
import math
from collections import Counter
from typing import NamedTuple

import numpy as np

from ns_common.errors import ModelMismatchError

K1 = 0.9  # BM25 parameters of the BM25 features: those of the candidate search (scripts/tune_bm25.py)
B = 1.0
TEXT_CACHE_SIZE = 20000  # titles whose tokenisations are kept (jieba costs ~0.2 ms a title; ~3 KB an entry)
STATS_FORMAT = "lexical-stats-v1"
TOKENISATIONS = ("uni", "bi", "word")  # joined characters, joined character bigrams, jieba words

FEATURES = [
    "bm25_rel",  # the candidate's BM25 score / the best candidate's (scale-free: bm25s or Milvus scores alike)
    "bm25_rank",  # 1-based position in the candidate list as given (best first)
    "bm25_uni",  # BM25 (K1, B) on joined character unigrams alone
    "bm25_bi",  # BM25 (K1, B) on joined character bigrams alone
    "bm25_word",  # BM25 (K1, B) on jieba words
    "kw_whole",  # number of keywords the joined title contains whole
    "kw_whole_frac",  # kw_whole / number of keywords
    "kw_any_frac",  # share of keywords with at least one of their grams in the title
    "kw_cov_mean",  # mean over keywords of the share of the keyword's grams found in the title
    "kw1_cov",  # the first keyword's gram share
    "title_len",  # characters of the joined title
    "n_keywords",  # number of keywords of the query
    "kw_pos_cov",  # gram shares weighted 1, 1/2, 1/3, ... by keyword position, normalised to [0, 1]
    "kw1_pos",  # where the first keyword's first gram first occurs / title length (1 when absent)
]


def joined(text):
    """The text lower-cased with all whitespace removed."""
    return "".join(text.lower().split())


def bigrams(text):
    """The overlapping character bigrams of `text`, in order (none for a text shorter than 2)."""
    return [text[i : i + 2] for i in range(len(text) - 1)]


def keyword_grams(keyword):
    """What a keyword's coverage is counted over: its bigrams in order (a repeated one counts twice), or the
    keyword itself when it is a single character."""
    return bigrams(keyword) if len(keyword) > 1 else [keyword]


@functools.lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


# text -> its jieba words, for the corpus documents of every LexicalStats built or loaded in this process: jieba
# (~0.2 ms a title) then never runs on a candidate title at query time. Only a cache: the words are jieba's own.
_CORPUS_WORDS = {}


def jieba_words(text):
    """jieba's words (default dictionary, HMM on) of the lower-cased text, whitespace dropped."""
    known = _CORPUS_WORDS.get(text)
    if known is not None:
        return list(known)
    return [w for w in _jieba().lcut(text.lower()) if w.strip()]


def corpus_fingerprint(texts):
    """(n_docs, sha1 hex of the texts joined by newlines): which corpus a LexicalStats was built from."""
    return len(texts), hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()


class TextTokens(NamedTuple):
    """A title's joined text, its counts of joined characters, joined bigrams and jieba words, and its number
    of jieba words."""

    text: str
    uni: Counter
    bi: Counter
    word: Counter
    word_len: int


@functools.lru_cache(maxsize=TEXT_CACHE_SIZE)
def text_tokens(text):
    """The tokenisations of one text; cached (bounded) because the same titles come back query after query."""
    flat = joined(text)
    words = jieba_words(text)
    return TextTokens(flat, Counter(flat), Counter(bigrams(flat)), Counter(words), len(words))


def warm_text_cache(texts):
    """Tokenises the first TEXT_CACHE_SIZE of `texts` into text_tokens' cache (e.g. the corpus at start-up,
    ~0.2 ms a title for jieba), so that the first queries run at the cached speed. Returns how many."""
    texts = list(texts)[:TEXT_CACHE_SIZE]
    for text in texts:
        text_tokens(text)
    return len(texts)


class CorpusMismatchError(ModelMismatchError, ValueError):
    """LexicalStats used with texts other than the corpus it was built from."""


class LexicalStats:
    """Corpus statistics of the features: N, and per tokenisation (TOKENISATIONS) the document frequency of
    each token and the mean tokens per document.

    Built once from the corpus texts (`from_texts`), saved as JSON with sorted keys (the same corpus always
    gives the same bytes). `n_docs` and `sha1` (corpus_fingerprint) say which corpus; `check_corpus` refuses
    another one. `words` keeps each document's jieba words, so that query time never runs jieba on a title.
    """

    def __init__(self, n_docs, sha1, doc_freq, avg_len, words=None):
        missing = [t for t in TOKENISATIONS if t not in doc_freq or t not in avg_len]
        if missing:
            raise ValueError(f"lexical statistics lack the tokenisations {missing}")
        self.n_docs = int(n_docs)
        self.sha1 = str(sha1)
        self.doc_freq = doc_freq  # tokenisation -> {token: number of documents containing it}
        self.avg_len = avg_len  # tokenisation -> mean tokens per document
        self._idf = {t: {} for t in TOKENISATIONS}
        self.words = words or {}  # document text -> its jieba words joined by spaces
        _CORPUS_WORDS.update((text, tuple(joined_words.split())) for text, joined_words in self.words.items())

    @classmethod
    def from_texts(cls, texts):
        """Counts document frequencies and average lengths over `texts` (the whole corpus, in id order); as a
        side effect the texts' tokenisations fill text_tokens' (bounded) cache, as warm_text_cache would."""
        texts = list(texts)
        if not texts:
            raise ValueError("LexicalStats needs at least one text")
        n_docs, sha1 = corpus_fingerprint(texts)
        doc_freq = {t: Counter() for t in TOKENISATIONS}
        total_len = dict.fromkeys(TOKENISATIONS, 0)
        words = {}
        for text in texts:
            text_words = jieba_words(text)
            words[text] = " ".join(text_words)
            _CORPUS_WORDS[text] = tuple(text_words)
            tokens = text_tokens(text)
            for t in TOKENISATIONS:
                counts = getattr(tokens, t)
                doc_freq[t].update(counts.keys())
                total_len[t] += _token_counts([tokens], t)[0]
        return cls(
            n_docs,
            sha1,
            {t: dict(doc_freq[t]) for t in TOKENISATIONS},
            {t: total_len[t] / n_docs for t in TOKENISATIONS},
            words,
        )

    def idf(self, tokenisation, token):
        """bm25s' lucene idf, ln(1 + (N - df + 0.5) / (df + 0.5)), with df 0 for a token the corpus lacks."""
        cache = self._idf[tokenisation]
        value = cache.get(token)
        if value is None:
            df = self.doc_freq[tokenisation].get(token, 0)
            value = cache[token] = math.log1p((self.n_docs - df + 0.5) / (df + 0.5))
        return value

    def check_corpus(self, texts):
        """Raises CorpusMismatchError unless `texts` are the corpus these statistics were built from."""
        n_docs, sha1 = corpus_fingerprint(list(texts))
        if (n_docs, sha1) != (self.n_docs, self.sha1):
            raise CorpusMismatchError(
                f"lexical statistics built from {self.n_docs} texts (sha1 {self.sha1[:12]}), "
                f"not from these {n_docs} (sha1 {sha1[:12]})"
            )

    def save(self, path):
        """Writes the statistics as compact JSON, keys sorted: deterministic for a given corpus."""
        data = {
            "format": STATS_FORMAT,
            "n_docs": self.n_docs,
            "sha1": self.sha1,
            "k1": K1,
            "b": B,
            "avg_len": self.avg_len,
            "doc_freq": self.doc_freq,
            "words": self.words,
        }
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def load(cls, path):
        """Reads what save wrote; raises ValueError for another file or other BM25 parameters."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or data.get("format") != STATS_FORMAT:
            raise ValueError(f"{path}: not a {STATS_FORMAT} file")
        if (data.get("k1"), data.get("b")) != (K1, B):
            raise ValueError(f"{path}: saved for BM25 k1={data.get('k1')}, b={data.get('b')}; this code uses {K1}, {B}")
        return cls(data["n_docs"], data["sha1"], data["doc_freq"], data["avg_len"], data.get("words"))


def _token_counts(docs, tokenisation):
    """Tokens of each TextTokens in one tokenisation (BM25's document lengths)."""
    if tokenisation == "uni":
        return [len(d.text) for d in docs]
    if tokenisation == "bi":
        return [max(len(d.text) - 1, 0) for d in docs]
    return [d.word_len for d in docs]


def tokenisation_bm25(query_tokens, docs, stats, tokenisation):
    """[len(docs)] BM25 of each document (TextTokens) for the query tokens, as bm25s' lucene variant with K1, B:
    sum over query tokens (a repeated token counts again) of idf * tf / (tf + K1 * (1 - B + B * len / avg_len)),
    len and tf counted in the given tokenisation ("uni", "bi" or "word")."""
    terms = Counter(query_tokens)
    if not terms or not docs:
        return np.zeros(len(docs))
    weight = {t: count * stats.idf(tokenisation, t) for t, count in terms.items()}
    query_keys = weight.keys()
    lengths = np.array(_token_counts(docs, tokenisation), dtype=np.float64)
    norms = (K1 * ((1 - B) + B * lengths / max(stats.avg_len[tokenisation], 1e-9))).tolist()
    fsum = math.fsum  # exact: the set's (hash-seeded) order cannot change the last bits
    out = []
    for counts, norm in zip([getattr(d, tokenisation) for d in docs], norms):
        common = query_keys & counts.keys()
        out.append(fsum([weight[t] * counts[t] / (counts[t] + norm) for t in common]) if common else 0.0)
    return np.array(out)


def _bm25_columns(query, scores, docs, stats):
    """bm25_rel, bm25_rank and BM25 under the three tokenisations."""
    n = len(docs)
    q = joined(query)
    best = scores.max()
    return {
        "bm25_rel": scores / best if best > 0 else np.zeros(n),
        "bm25_rank": np.arange(1, n + 1, dtype=np.float64),
        "bm25_uni": tokenisation_bm25(list(q), docs, stats, "uni"),
        "bm25_bi": tokenisation_bm25(bigrams(q), docs, stats, "bi"),
        "bm25_word": tokenisation_bm25(jieba_words(query), docs, stats, "word"),
    }


def _gram_coverage(keywords, docs):
    """[n, K] share of each keyword's grams (keyword_grams) found in each title."""
    grams = [keyword_grams(k) for k in keywords]
    flat = [g for kg in grams for g in kg]
    present = np.array([[g in d.bi for g in flat] for d in docs], dtype=np.float64).reshape(len(docs), len(flat))
    for column, gram in enumerate(flat):
        if len(gram) == 1:  # a one-character keyword: looked up among the characters
            present[:, column] = [gram in d.uni for d in docs]
    share = np.zeros((len(flat), len(keywords)))  # gram -> its keyword, 1 / the keyword's gram count
    row = 0
    for j, kg in enumerate(grams):
        share[row : row + len(kg), j] = 1.0 / len(kg)
        row += len(kg)
    return present @ share


def _keyword_columns(keywords, docs):
    """The keyword-coverage features (all 0 for a query without keywords)."""
    n, k = len(docs), len(keywords)
    names = ("kw_whole", "kw_whole_frac", "kw_any_frac", "kw_cov_mean", "kw1_cov", "kw_pos_cov")
    if k == 0:
        columns = {name: np.zeros(n) for name in names}
        columns["kw1_pos"] = np.ones(n)
        return columns
    whole = np.array([[kw in d.text for kw in keywords] for d in docs], dtype=np.float64).reshape(n, k)
    coverage = _gram_coverage(keywords, docs)
    position_weight = 1.0 / np.arange(1, k + 1)
    first_gram = keyword_grams(keywords[0])[0]
    first_at = np.array([d.text.find(first_gram) for d in docs], dtype=np.float64)
    title_len = np.array([max(len(d.text), 1) for d in docs], dtype=np.float64)
    return {
        "kw_whole": whole.sum(axis=1),
        "kw_whole_frac": whole.mean(axis=1),
        "kw_any_frac": (coverage > 0).mean(axis=1),
        "kw_cov_mean": coverage.mean(axis=1),
        "kw1_cov": coverage[:, 0],
        "kw_pos_cov": coverage @ position_weight / position_weight.sum(),
        "kw1_pos": np.where(first_at >= 0, first_at / title_len, 1.0),
    }


def lexical_features(query, texts, bm25_scores, stats):
    """[len(texts), len(FEATURES)] float64 features of the candidate titles `texts` for `query`.

    texts: BM25's candidates, best first; bm25_scores: their BM25 scores in that order, on any scale (only
    their ratios to the best and their order are used: bm25s' and Milvus' (k1 + 1) times larger ones give the
    same features). stats: the LexicalStats of the corpus the texts come from. Each column is defined in
    FEATURES' comments; BM25 columns use K1, B and the stats' idf and average lengths.
    """
    scores = np.asarray(bm25_scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(scores)} BM25 scores")
    if not texts:
        return np.zeros((0, len(FEATURES)))
    docs = [text_tokens(t) for t in texts]
    keywords = query.lower().split()
    columns = _bm25_columns(query, scores, docs, stats)
    columns.update(_keyword_columns(keywords, docs))
    columns["title_len"] = np.array([len(d.text) for d in docs], dtype=np.float64)
    columns["n_keywords"] = np.full(len(docs), float(len(keywords)))
    return np.stack([columns[name] for name in FEATURES], axis=1)
