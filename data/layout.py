"""Writes the canonical data layout (PaddleNLP's literature_search_data) from papers.

Both data/make_sample.py and data/prepare_csl.py end here, so the sample and CSL have exactly the same
shape. Input: every title of the collection (the corpus), labelled (query, title) pairs, unlabelled
domain texts and pretraining documents. Output (under output_dir):

    milvus/milvus_data.csv        every title, one a line (line number = doc id)
    milvus/papers.jsonl           the same papers as records (title, id, keywords, abstract, category, discipline,
                                  year: ns_common/records.py), line for line: the corpus to insert for filters
    recall/corpus.csv             the same titles (recall evaluation corpus)
    recall/train_unsupervised.csv titles + abstracts, one text a line (SimCSE)
    recall/train.csv, dev.csv     query<TAB>title (disjoint split of the labelled pairs)
    recall/test.csv               query<TAB>title pairs to score: each dev pair, then the same query with a random title
    sort/train_pairwise.csv       query<TAB>title<TAB>neg_title, negatives lexical (BM25) from the train queries
    sort/dev_pairwise.csv         query<TAB>title<TAB>label (1 gold, 0 lexical negative), first half of the dev queries
    sort/test_pairwise.csv        same, second half of the dev queries
    pretrain/domain_corpus.txt    one document a line, sentences separated by 。

data/ is no package: its scripts run as `python data/<script>.py`, which puts data/ on sys.path, so they
(and tests/test_data.py, which adds data/ to sys.path) import this module as `layout`.
"""

import dataclasses
import os
import random

from ns_common.bm25 import BM25Index, lexical_negatives
from ns_common.io import write_lines
from ns_common.records import record_line

LAYOUT_FILES = (
    "milvus/milvus_data.csv",
    "milvus/papers.jsonl",
    "recall/corpus.csv",
    "recall/train_unsupervised.csv",
    "recall/train.csv",
    "recall/dev.csv",
    "recall/test.csv",
    "sort/train_pairwise.csv",
    "sort/dev_pairwise.csv",
    "sort/test_pairwise.csv",
    "pretrain/domain_corpus.txt",
)


def dedup(texts):
    """Stable de-duplication of non-empty, whitespace-normalised texts."""
    seen = set()
    out = []
    for text in texts:
        text = " ".join(text.split())
        if text and text not in seen:
            seen.add(text)
            out.append(text)
    return out


def clean_pairs(pairs, corpus_titles):
    """Keeps (query, title) pairs whose title is in the corpus; a repeated query or title keeps its first
    pair only (the same query or title on both sides of the split would leak). Returns (kept, n_dropped)."""
    in_corpus = set(corpus_titles)
    seen_queries, seen_titles, kept = set(), set(), []
    for query, title in pairs:
        query, title = " ".join(query.split()), " ".join(title.split())
        if not query or title not in in_corpus or query in seen_queries or title in seen_titles:
            continue
        seen_queries.add(query)
        seen_titles.add(title)
        kept.append((query, title))
    return kept, len(pairs) - len(kept)


def split_pairs(pairs, dev_ratio, seed):
    """Seeded, disjoint train/dev split; both parts keep the input order."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_dev = round(len(pairs) * dev_ratio)
    dev_ids = set(order[:n_dev])
    train = [p for i, p in enumerate(pairs) if i not in dev_ids]
    dev = [p for i, p in enumerate(pairs) if i in dev_ids]
    return train, dev


def write_layout(
    output_dir,
    corpus_titles,
    labelled_pairs,
    unsupervised_texts,
    domain_docs,
    dev_ratio=0.2,
    seed=1000,
    neg_per_query=4,
    neg_pool=10,
    records=None,
):
    """Writes every file of the layout; returns {relative path: rows written} plus a few counts. records: a
    ns_common.records.Record per corpus title (same order; their titles are the corpus titles): papers.jsonl gets
    the first record of each distinct title, the fields it lacks filled from later ones of that title (without
    records: records holding the title only)."""
    if not 0 < dev_ratio < 1:
        raise ValueError(f"dev_ratio must be between 0 and 1, got {dev_ratio}")
    titles = dedup(corpus_titles)
    pairs, n_dropped = clean_pairs(labelled_pairs, titles)
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 labelled pairs with their title in the corpus, got {len(pairs)}")
    train, dev = split_pairs(pairs, dev_ratio, seed)
    title_id = {t: i for i, t in enumerate(titles)}

    index = BM25Index(titles)

    def negatives(part, salt):
        return lexical_negatives(
            index, [q for q, _ in part], [title_id[t] for _, t in part], neg_per_query, pool=neg_pool, seed=seed + salt
        )

    train_negs = negatives(train, 1)
    dev_negs = negatives(dev, 2)
    half = (len(dev) + 1) // 2

    def labelled_rows(part, negs):
        for (query, title), neg_ids in zip(part, negs):
            yield query, title, 1
            for j in neg_ids:
                yield query, titles[j], 0

    rng = random.Random(seed + 3)

    def test_rows():
        for query, title in dev:
            yield query, title
            other = rng.randrange(len(titles) - 1)
            # skip over the gold so the negative is always another title
            yield query, titles[other + (other >= title_id[title])]

    record_of = {}
    for record in records or ():
        title = " ".join(record.title.split())
        first = record_of.setdefault(title, record)
        if first is not record:  # a title given twice (CSL's TSVs: a paper in ts and in cls_ctg): the fields the
            # first record lacks come from the later one
            later = {name: value for name, value in vars(record).items() if value and not getattr(first, name)}
            record_of[title] = dataclasses.replace(first, **later)

    def paper_records():
        from ns_common.records import Record

        for title in titles:
            record = record_of.get(title, Record(title))
            record.title = title
            yield record_line(record)

    path = lambda rel: os.path.join(output_dir, rel)  # noqa: E731
    counts = {
        "milvus/milvus_data.csv": write_lines(path("milvus/milvus_data.csv"), titles),
        "milvus/papers.jsonl": write_lines(path("milvus/papers.jsonl"), paper_records()),
        "recall/corpus.csv": write_lines(path("recall/corpus.csv"), titles),
        "recall/train_unsupervised.csv": write_lines(path("recall/train_unsupervised.csv"), dedup(unsupervised_texts)),
        "recall/train.csv": write_lines(path("recall/train.csv"), train),
        "recall/dev.csv": write_lines(path("recall/dev.csv"), dev),
        "recall/test.csv": write_lines(path("recall/test.csv"), test_rows()),
        "sort/train_pairwise.csv": write_lines(
            path("sort/train_pairwise.csv"),
            ((q, t, titles[j]) for (q, t), negs in zip(train, train_negs) for j in negs),
            header=("query", "title", "neg_title"),
        ),
        "sort/dev_pairwise.csv": write_lines(
            path("sort/dev_pairwise.csv"),
            labelled_rows(dev[:half], dev_negs[:half]),
            header=("query", "title", "label"),
        ),
        "sort/test_pairwise.csv": write_lines(
            path("sort/test_pairwise.csv"),
            labelled_rows(dev[half:], dev_negs[half:]),
            header=("query", "title", "label"),
        ),
        "pretrain/domain_corpus.txt": write_lines(path("pretrain/domain_corpus.txt"), dedup(domain_docs)),
    }
    counts["labelled pairs dropped (duplicate or title not in corpus)"] = n_dropped
    return counts


def format_counts(counts):
    return ", ".join(f"{k} {v}" for k, v in counts.items())
