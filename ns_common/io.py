"""Readers and writers for the canonical data layout (PaddleNLP's literature_search_data).

Every reader follows the same bad-input rules: a line with the wrong number of fields, an empty
field, invalid UTF-8 or (where asked) a duplicate key is skipped and counted, and one warning per
file names the file and the first offending line numbers. A missing file is a clear error.
"""

import contextlib
import hashlib
import json
import os
import tempfile

from ns_common.errors import BadInputError
from ns_common.records import decode_corpus_line, is_records_file, parse_json_line
from ns_common.text import clean_field
from ns_common.utils import logger


class DataFileError(BadInputError):
    """A data file that cannot be used at all (missing, unreadable header, nothing valid)."""


class SkipCounter:
    """Collects skipped lines by reason so one warning can summarise a whole file."""

    def __init__(self, path):
        self.path = path
        self.kept = 0
        self.skipped = {}  # reason -> list of 1-based line numbers
        self.details = {}  # reason -> what was wrong with its first line (when the lines of a reason differ)

    def skip(self, line_no, reason, detail=None):
        self.skipped.setdefault(reason, []).append(line_no)
        if detail and reason not in self.details:
            self.details[reason] = f"line {line_no}: {detail}"

    @property
    def n_skipped(self):
        return sum(len(v) for v in self.skipped.values())

    def report(self):
        if not self.skipped:
            return
        parts = []
        for reason, lines in self.skipped.items():
            shown = ", ".join(str(n) for n in lines[:5]) + (", ..." if len(lines) > 5 else "")
            first = f"; first {self.details[reason]}" if reason in self.details else ""
            parts.append(f"{len(lines)} {reason} (line {shown}{first})")
        logger.warning(f"{self.path}: kept {self.kept} lines, skipped {self.n_skipped}: " + "; ".join(parts))


def check_file(path, what="input file"):
    """Fail early, with one line naming the file, when it does not exist."""
    if path and os.path.isdir(path):
        raise DataFileError(f"{what} {path}: is a directory, expected a file")
    if not path or not os.path.isfile(path):
        raise DataFileError(f"{what} not found: {path}")
    return path


def iter_raw_lines(path, counter=None):
    """Yields (line_no, text) with the line ending stripped; undecodable lines are skipped."""
    check_file(path)
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                if counter is not None:
                    counter.skip(line_no, "invalid UTF-8")
                continue
            if "\x00" in text:  # a binary file, or a corrupted line: no text of ours holds NUL
                if counter is not None:
                    counter.skip(line_no, "lines with NUL bytes")
                continue
            if line_no == 1 and text.startswith("\ufeff"):
                text = text[1:]  # a BOM some editors write
            yield line_no, text.rstrip("\r\n")


def read_fields(path, n_fields, header=None, unique_field=None, counter=None, check=None):
    """Yields lists of `n_fields` stripped, non-empty tab-separated fields.

    header: expected first line's field names (then line 1 is checked and skipped), or None.
    unique_field: index of a field whose repeated values are skipped as duplicates.
    check: optional function(fields) -> a reason to skip the line, or None to keep it.
    """
    own_counter = counter is None
    counter = counter or SkipCounter(path)
    seen, seen_header = set(), False
    for line_no, text in iter_raw_lines(path, counter):
        fields = [x.strip() for x in text.split("\t")]
        if header is not None and not seen_header:
            if line_no != 1:  # line 1 was not UTF-8 (skipped by iter_raw_lines): no header to check
                raise DataFileError(
                    f"{path}:1: expected header {'<TAB>'.join(header)!r}, found bytes that are not UTF-8"
                )
            if fields != list(header):
                raise DataFileError(f"{path}:1: expected header {'<TAB>'.join(header)!r}, found {text[:80]!r}")
            seen_header = True
            continue
        if not text.strip() and n_fields > 1:
            counter.skip(line_no, "empty line")
            continue
        if len(fields) != n_fields:
            counter.skip(line_no, f"lines without exactly {n_fields} tab-separated fields")
            continue
        if any(not x for x in fields):
            counter.skip(line_no, "empty text")
            continue
        reason = check(fields) if check else None
        if reason:
            counter.skip(line_no, reason)
            continue
        if unique_field is not None:
            key = fields[unique_field]
            if key in seen:
                counter.skip(line_no, "duplicates")
                continue
            seen.add(key)
        counter.kept += 1
        yield fields
    if own_counter:
        counter.report()


def read_texts(path, counter=None):
    """One text a line (corpus, milvus_data, train_unsupervised). Empty lines are skipped and counted.

    Note: for a corpus whose line number is the doc id use `read_corpus`, which keeps positions.
    """
    for fields in read_fields(path, 1, counter=counter):
        yield fields[0]


def read_corpus(path):
    """Returns the list of documents of a one-document-a-line file, index = doc id (0-based line); of a paper
    records file (.jsonl, ns_common.records) the titles.

    A document line may not be dropped (ids would shift), so an empty or undecodable line is kept
    as an empty string, and counted in one warning.
    """
    counter = SkipCounter(path)
    records = is_records_file(path)
    with open(check_file(path), "rb") as f:
        seen_ids = {}
        docs = [decode_corpus_line(raw, n, counter, records, seen_ids) for n, raw in enumerate(f, start=1)]
    counter.report()
    return [doc.title for doc in docs] if records else docs


def read_text_pairs(path, unique_query=False, counter=None):
    """`query<TAB>doc` (train.csv, dev.csv, test.csv): yields (text_a, text_b)."""
    yield from (
        tuple(fields) for fields in read_fields(path, 2, unique_field=0 if unique_query else None, counter=counter)
    )


def read_similar_pairs(path):
    """A `query<TAB>doc` file -> (distinct queries in first-seen order, {query: set of gold docs})."""
    gold = {}
    for query, doc in read_text_pairs(path):
        gold.setdefault(query, set()).add(doc)
    return list(gold), gold


def read_recall_result(path):
    """recall_result.txt -> {query: [(doc, score), ...]} in file order. Malformed lines are skipped and counted."""
    result = {}
    for query, doc, score in read_fields(path, 3):
        try:
            value = float(score)
        except ValueError:
            value = float("nan")
        result.setdefault(query, []).append((doc, value))
    return result


def read_pairwise_train(path, counter=None):
    """sort/train_pairwise.csv with header query, title, neg_title: yields (query, title, neg_title)."""
    yield from (
        tuple(fields) for fields in read_fields(path, 3, header=("query", "title", "neg_title"), counter=counter)
    )


def read_pairwise_labeled(path, counter=None):
    """sort/dev_pairwise.csv, test_pairwise.csv with header query, title, label: yields (q, t, int label)."""

    def label_is_binary(fields):
        return None if fields[2] in ("0", "1") else "labels other than 0/1"

    for q, t, label in read_fields(path, 3, header=("query", "title", "label"), counter=counter, check=label_is_binary):
        yield q, t, int(label)


def read_jsonl(path, required=(), counter=None, check=None):
    """Yields dicts of a JSON Lines file; lines that don't parse, are not a JSON object ("text", 5, [...], null) or
    lack a required field are skipped and counted; check: optional function(obj) -> a reason to skip it, or None."""
    own_counter = counter is None
    counter = counter or SkipCounter(path)
    for line_no, text in iter_raw_lines(path, counter):
        if not text.strip():
            continue
        try:
            obj = parse_json_line(text)
        except ValueError as e:
            reason = "invalid JSON" if str(e).startswith("not JSON") else "lines holding a NUL or a lone surrogate"
            counter.skip(line_no, reason, str(e))
            continue
        if not isinstance(obj, dict):
            counter.skip(line_no, "lines that are not a JSON object")
            continue
        missing = [k for k in required if k not in obj]
        if missing:
            counter.skip(line_no, f"missing field {missing[0]!r}")
            continue
        reason = check(obj) if check else None
        if reason:
            counter.skip(line_no, reason)
            continue
        counter.kept += 1
        yield obj
    if own_counter:
        counter.report()


def write_lines(path, rows, header=None):
    """Writes rows (strings, or tuples joined by tabs); tabs/newlines inside fields become spaces."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    n = 0
    with atomic_write(path) as f:
        if header:
            f.write("\t".join(header) + "\n")
        for row in rows:
            if isinstance(row, str):
                row = (row,)
            f.write("\t".join(clean_field(str(x)) for x in row) + "\n")
            n += 1
    return n


def recall_ids_file(path) -> str:
    """The companion of a recall result file that names its documents by id, row for row (query<TAB>id<TAB>score):
    recall_result.txt -> recall_result.ids.txt. The id is the paper's own (a collection keyed by paper ids, records
    with ids) or its 0-based corpus line. The result file itself stays keyed by text (what evaluation reads)."""
    stem, ext = os.path.splitext(path)
    return f"{stem}.ids{ext or '.txt'}"


def write_recall_result(path, queries, corpus, indices, scores):
    """recall_result.txt: query<TAB>doc<TAB>score, one row per recalled doc, best first."""
    rows = (
        (query, corpus[j], f"{s:.6f}")
        for query, row, row_scores in zip(queries, indices, scores)
        for j, s in zip(row, row_scores)
    )
    return write_lines(path, rows)


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Opens a temporary file in path's directory and moves it onto path when the block ends without an error
    (os.replace: readers see the old file or the whole new one, never half of it); on an error it is removed."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def weights_fingerprint(model_dir):
    """sha1 of a model's weights: model_dir's inference.pdiparams, else its model_state.pdparams (model_dir may also
    be the weights file itself); None without them. What ties a collection, a ranking or an embedding file to the
    model that computed it."""
    if model_dir and os.path.isfile(model_dir):
        candidates = [model_dir]
    else:
        candidates = [os.path.join(model_dir or "", name) for name in ("inference.pdiparams", "model_state.pdparams")]
    for path in candidates:
        if os.path.isfile(path):
            digest = hashlib.sha1()
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
            return digest.hexdigest()
    return None


def max_positions(*paths):
    """max_position_embeddings of the first config.json found in paths (model directories, or a weights file's
    directory); None when none says (a model name to download, an older export)."""
    for path in paths:
        if not path:
            continue
        directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        config_file = os.path.join(directory, "config.json")
        if not os.path.isfile(config_file):
            continue
        try:
            with open(config_file, encoding="utf-8") as f:
                value = json.load(f).get("max_position_embeddings")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and value > 0:
            return value, config_file
    return None


def check_max_seq_length(max_seq_length, *paths):
    """ConfigError when --max_seq_length exceeds the positions the model has (config.json's max_position_embeddings):
    a long text would otherwise fail deep in the model (an embedding index out of range)."""
    from ns_common.errors import ConfigError

    found = max_positions(*paths)
    if found and max_seq_length > found[0]:
        raise ConfigError(
            f"--max_seq_length {max_seq_length} exceeds the model's {found[0]} positions (max_position_embeddings "
            f"in {found[1]}): use at most {found[0]}"
        )
