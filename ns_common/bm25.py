"""Lexical search over short Chinese texts: BM25 (bm25s defaults) on character unigrams + bigrams.

Used as the keyword baseline and as the model-free source of hard negatives (titles that share many
characters with the query but are not its gold title):

    index = BM25Index(titles)
    indices, scores = index.search(["卷积神经网络 图像识别"], k=10)   # arrays of shape [1, 10]
"""

import random

import numpy as np

from ns_common.cli import entry_point
from ns_common.negatives import mine_negatives


def char_ngrams(text):
    """Lower-cased character unigrams and bigrams; bigrams do not cross whitespace (keyword borders)."""
    tokens = []
    for segment in text.lower().split():
        tokens.extend(segment)
        tokens.extend(segment[i : i + 2] for i in range(len(segment) - 1))
    return tokens


def joined_char_ngrams(text):
    """Lower-cased character unigrams and bigrams of the text with its whitespace removed, so bigrams
    cross keyword borders: the keyword-search bar of ../shared/data/README.md (bm25s defaults on these
    tokens: Recall@1 88.5, MRR@10 91.6 on CSL dev). The search system's lexical leg uses the same tokens."""
    text = "".join(text.lower().split())
    return list(text) + [text[i : i + 2] for i in range(len(text) - 1)]


def encode_token(token):
    """A character n-gram as an ASCII word ("u" + code point in hex, "b" + both code points for a bigram).
    Milvus' `standard` tokenizer keeps such a word whole on Milvus Lite and on a server alike, whereas it
    would split a bigram of CJK characters into two unigrams."""
    return f"u{ord(token):x}" if len(token) == 1 else "b" + "x".join(f"{ord(c):x}" for c in token)


def lexical_text(text, max_chars=4096):
    """What the collection's lexical field stores and what a BM25 query sends: the text's joined
    character uni+bigrams as space-separated ASCII words (cut to max_chars characters first)."""
    return " ".join(encode_token(t) for t in joined_char_ngrams(text[:max_chars]))


class BM25Index:
    def __init__(self, docs, tokenizer=char_ngrams, k1=1.5, b=0.75):
        """tokenizer: char_ngrams (per keyword; hard-negative mining) or joined_char_ngrams (the reference).
        k1, b: bm25s' defaults."""
        import bm25s

        self.docs = docs  # the texts, for the negatives' duplicate-of-the-gold rule
        self.n_docs = len(docs)
        self.tokenizer = tokenizer
        self.retriever = bm25s.BM25(k1=k1, b=b)
        self.retriever.index([tokenizer(d) for d in docs], show_progress=False)
        self.vocab = self.retriever.vocab_dict

    def search(self, queries, k=10):
        """Returns (indices, scores), int and float arrays of shape [len(queries), k], best first.

        k is capped at the number of documents; a query sharing no token with the corpus scores 0 everywhere.
        """
        k = min(k, self.n_docs)
        indices = np.tile(np.arange(k, dtype=np.int64), (len(queries), 1))
        scores = np.zeros((len(queries), k), dtype=np.float32)
        # bm25s rejects tokens it has not indexed: keep known ones; a query left with none scores 0
        query_tokens = [[t for t in self.tokenizer(q) if t in self.vocab and t != ""] for q in queries]
        known = [i for i, tokens in enumerate(query_tokens) if tokens]
        if known:
            found, found_scores = self.retriever.retrieve([query_tokens[i] for i in known], k=k, show_progress=False)
            indices[known] = found
            scores[known] = found_scores
        # equal scores in the lowest bits differ between CPUs (numpy's SIMD sums): ties are ordered by doc id on
        # scores rounded to 1e-4, so the same corpus gives the same ranking (and the same mined negatives) anywhere
        order = np.lexsort((indices, -np.round(scores, 4)), axis=1)
        return np.take_along_axis(indices, order, axis=1), np.take_along_axis(scores, order, axis=1)


def lexical_negatives(index, queries, gold_ids, n_neg, pool=10, seed=1000, depth=100):
    """For each query, up to `n_neg` doc ids drawn (seeded) among its first `pool` eligible BM25 hits, by
    the one rule of ns_common.negatives (never a gold id or its text; below the gold when it is among
    the top `depth` hits, else from the top).

    gold_ids: one doc id or a set of ids per query. Sampling from a small pool rather than taking the
    very top hits trades a little hardness for fewer near-duplicates of the gold (false negatives).
    `depth` leaves room for `pool` candidates below a gold that BM25 ranks a few places down.
    Returns a list of lists of doc ids (shorter than n_neg only when fewer are eligible: a tiny corpus,
    or a gold at the very bottom of the top `depth`).
    """
    rng = random.Random(seed)
    pool = max(pool, n_neg)
    hits, scores = index.search(queries, k=max(depth, pool + 1))
    negatives = []
    for row, row_scores, gold in zip(hits, scores, gold_ids):
        gold = gold if isinstance(gold, (set, frozenset)) else {gold}
        ids = [int(i) for i in row]
        chosen, _ = mine_negatives(
            [index.docs[i] for i in ids],
            [index.docs[g] for g in gold],
            n_neg,
            ids=ids,
            gold_ids=gold,
            scores=[float(x) for x in row_scores],
            pool=pool,
            rng=rng,
        )
        negatives.append([ids[i] for i in chosen])
    return negatives


@entry_point
def main(argv=None):
    """BM25 recall as a command, writing the recall stage's recall_result.txt (query<TAB>doc<TAB>score):

        python -m ns_common.bm25 --corpus_file data/sample/recall/corpus.csv \
            --similar_text_pair_file data/sample/recall/train.csv --recall_result_file out/bm25_train.txt
    """
    import argparse

    from ns_common.cli import check_outputs, fail
    from ns_common.io import DataFileError, check_file, read_corpus, read_similar_pairs, write_recall_result
    from ns_common.utils import Timer, logger

    parser = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_file", required=True, help="one document a line (line number = doc id)")
    parser.add_argument(
        "--similar_text_pair_file", required=True, help="query<TAB>doc pairs (their distinct queries are searched)"
    )
    parser.add_argument("--recall_result_file", required=True, help="output: recall_num rows a query, best first")
    parser.add_argument("--recall_num", type=int, default=50)
    parser.add_argument(
        "--tokens",
        choices=("keywords", "joined"),
        default="keywords",
        help="keywords: bigrams within each keyword (mining); joined: whitespace removed first (the reference)",
    )
    args = parser.parse_args(argv)
    check_outputs(
        files=[("recall_result_file", args.recall_result_file)],
        inputs=[("corpus_file", args.corpus_file), ("similar_text_pair_file", args.similar_text_pair_file)],
    )
    if args.recall_num <= 0:
        fail(f"--recall_num must be positive, got {args.recall_num}")
    try:
        corpus = read_corpus(check_file(args.corpus_file, "--corpus_file"))
        check_file(args.similar_text_pair_file, "--similar_text_pair_file")
    except DataFileError as e:
        fail(str(e))
    queries, _ = read_similar_pairs(args.similar_text_pair_file)
    if not queries:
        fail(f"--similar_text_pair_file {args.similar_text_pair_file}: no query<TAB>doc lines")
    timer = Timer()
    tokenizer = joined_char_ngrams if args.tokens == "joined" else char_ngrams
    indices, scores = BM25Index(corpus, tokenizer).search(queries, k=args.recall_num)
    n = write_recall_result(args.recall_result_file, queries, corpus, indices, scores)
    logger.info(
        f"BM25 recall: {len(queries)} queries x {indices.shape[1]} of {len(corpus)} docs in {timer.seconds:.1f}s, {n} rows -> {args.recall_result_file}"  # noqa: E501
    )


if __name__ == "__main__":
    main()
