"""Corpus and query files of the Milvus stage. A corpus is one title a line or paper records (.jsonl,
ns_common.records): the same ids and titles either way, records add the fields a collection stores beside them.

The corpus is streamed in chunks (a 10M-line corpus never sits in memory as tokens), with the same rules
as ns_common.io.read_corpus: the 0-based line number is the doc id, so an empty or undecodable line is
kept as an empty document and counted, never dropped.
"""

import hashlib

from ns_common.io import SkipCounter, check_file, read_fields
from ns_common.records import Record, decode_corpus_line, is_records_file

FACET_FIELDS = ("category", "discipline")  # the text fields the web service offers as filters (with year)
MAX_FACET_VALUES = 200


def count_lines(path):
    """Number of lines (a last line without a newline counts), read in binary blocks."""
    n, last = 0, b"\n"
    with open(check_file(path, "corpus file"), "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def iter_record_chunks(path, chunk_size, start_line=0, report=True):
    """Yields (first_id, [Record]) of up to chunk_size documents from 0-based line start_line: the paper records of a
    .jsonl corpus, or Records holding only the title of a one-title-a-line file (ns_common.records); report: one
    warning at the end counting empty, undecodable and malformed lines (each kept as an empty document)."""
    records = is_records_file(path)
    for first_id, docs in _iter_chunks(path, chunk_size, start_line, report, records):
        yield first_id, docs if records else [Record(text) for text in docs]


def iter_corpus_chunks(path, chunk_size, start_line=0, report=True):
    """Yields (first_id, [texts]) of up to chunk_size documents, starting at 0-based line start_line (a records
    corpus: the titles); report: one warning at the end counting empty and undecodable lines."""
    records = is_records_file(path)
    for first_id, docs in _iter_chunks(path, chunk_size, start_line, report, records):
        yield first_id, [doc.title for doc in docs] if records else docs


def _iter_chunks(path, chunk_size, start_line, report, records):
    counter = SkipCounter(path)
    seen_ids = {} if records else None  # a record repeating an earlier paper id is kept empty
    chunk, first_id = [], start_line
    with open(check_file(path, "corpus file"), "rb") as f:
        for line_no, raw in enumerate(f):
            if line_no < start_line:
                if records:  # a resumed run knows the ids before its first line as a whole run does
                    decode_corpus_line(raw, line_no + 1, SkipCounter(path), records, seen_ids)
                continue
            chunk.append(decode_corpus_line(raw, line_no + 1, counter, records, seen_ids))
            if len(chunk) == chunk_size:
                yield first_id, chunk
                first_id, chunk = first_id + len(chunk), []
    if chunk:
        yield first_id, chunk
    if report:
        counter.report()


def corpus_fingerprint(path):
    """(documents, sha1 hex of the documents joined by newlines) of a corpus file, its documents as the collection
    stores them (search.features.corpus_fingerprint gives the same for the same texts): which corpus built a
    collection, and which one a fitted ranking's statistics come from."""
    return corpus_summary(path)[:2]


class FacetCounter:
    """What papers offer to filter on, counted one paper at a time (a corpus file's records, or the rows a collection
    holds): {"category": {value: papers}, "discipline": {...}, "year": [first, last] or None}."""

    def __init__(self):
        self.values = {name: {} for name in FACET_FIELDS}
        self.years = None

    def add(self, fields):
        """fields: a mapping with the paper's category, discipline and year ("" / 0: unknown)."""
        for name in FACET_FIELDS:
            value = fields.get(name)
            if value:
                self.values[name][value] = self.values[name].get(value, 0) + 1
        year = fields.get("year")
        if year:
            self.years = [min(self.years[0], year), max(self.years[1], year)] if self.years else [year, year]

    def facets(self):
        """The counts, the most frequent values first; a field of too many values offers its MAX_FACET_VALUES first."""
        facets = {
            name: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FACET_VALUES])
            for name, counts in self.values.items()
        }
        facets["year"] = list(self.years) if self.years else None
        return facets


def corpus_summary(path, facets=None):
    """(documents, sha1 as corpus_fingerprint, documents with text) in one pass: a corpus whose every line is empty,
    undecodable or binary has no text to embed or search. facets: a dict filled with the values the records' filter
    fields take (corpus_facets)."""
    digest, n_docs, n_texts = hashlib.sha1(), 0, 0
    counter = FacetCounter()
    for _, docs in iter_record_chunks(path, 65536, report=False):
        for doc in docs:
            digest.update((("\n" if n_docs else "") + doc.title).encode("utf-8"))
            n_docs += 1
            n_texts += bool(doc.title)
            if facets is not None:
                counter.add({"category": doc.category, "discipline": doc.discipline, "year": doc.year})
    if facets is not None:
        facets.update(counter.facets())
    return n_docs, digest.hexdigest(), n_texts


def corpus_facets(path):
    """What a records corpus offers to filter on: {"category": {value: papers}, "discipline": {...}, "year":
    [first, last] or None} (at most MAX_FACET_VALUES values a field, the most frequent; {} values for a title file)."""
    facets = {}
    corpus_summary(path, facets)
    return facets


def read_queries(path):
    """`query<TAB>gold doc` lines (recall dev/test files) or one plain query a line.

    Returns (queries, golds) where golds is None for plain queries. The format is decided by the first
    non-empty line; lines of the other shape are skipped and counted like any malformed line.
    """
    check_file(path, "--query_file")
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    if "\t" in first:
        pairs = list(read_fields(path, 2))
        return [q for q, _ in pairs], [g for _, g in pairs]
    return [fields[0] for fields in read_fields(path, 1)], None
