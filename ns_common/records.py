"""Paper records: a corpus may be PaddleNLP's one-title-a-line file (the default) or JSON Lines of papers.

    {"id": "csl-dev-00012", "title": "...", "keywords": ["...", "..."], "abstract": "...",
     "category": "工学", "discipline": "计算机科学与技术", "year": 2019}

`title` is required; every other field is optional. A file is read as records when its name ends with
.jsonl. Either way line i (0-based) is document i: the title is what is embedded, indexed by BM25,
ranked and shown, so a records file and the title file it was written beside give the same ids, vectors
and hits; the other fields are stored beside it (Milvus scalar fields) to filter on and to show.

A malformed record (not JSON, not an object, no title, a field of the wrong type) keeps its place as an
empty document, like an undecodable line of a title file, and is counted in one warning naming its line.
"""

import json
from dataclasses import dataclass, field

from ns_common.text import clean_field

RECORDS_SUFFIX = ".jsonl"
TEXT_FIELDS = ("category", "discipline", "abstract")
MAX_KEYWORDS = 64  # the collection's keywords array holds at most this many (more are dropped)
MAX_FIELD_CHARS = 256  # category, discipline, id and each keyword are cut to this many characters
MAX_ABSTRACT_CHARS = 4000
YEAR_RANGE = (1, 9999)  # 0 = unknown


@dataclass
class Record:
    """One paper. Missing fields are empty ("" / () / year 0)."""

    title: str
    paper_id: str = ""
    keywords: tuple = field(default_factory=tuple)
    abstract: str = ""
    category: str = ""
    discipline: str = ""
    year: int = 0

    def fields(self) -> dict:
        """The stored fields besides the title, as the collection keeps them."""
        return {
            "paper_id": self.paper_id,
            "category": self.category,
            "discipline": self.discipline,
            "year": self.year,
            "keywords": list(self.keywords),
            "abstract": self.abstract,
        }


def is_records_file(path) -> bool:
    """A corpus of paper records (JSON Lines) rather than one title a line: decided by the name (.jsonl)."""
    return str(path).lower().endswith(RECORDS_SUFFIX)


def _text(value, name, limit=MAX_FIELD_CHARS):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"field {name} is {type(value).__name__}, expected text")
    return clean_field(value)[:limit]


def parse_json_line(text):
    """The JSON value of one line of a JSON Lines file; ValueError naming why it is none: not JSON, nested too deeply
    (thousands of brackets: json's RecursionError), an integer too long to convert (over 4,300 digits), or a text
    (a key or a value at any depth) holding a lone surrogate (an escaped "\\ud800", which no UTF-8 file can hold) or a
    NUL character (an escaped "\\u0000")."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg})") from None
    except RecursionError:
        raise ValueError("not JSON (nested too deeply)") from None
    except ValueError as e:  # e.g. int's digit limit: "Exceeds the limit (4300 digits) for integer string conversion"
        raise ValueError(f"not JSON ({str(e).split(';')[0]})") from None
    pending = [value]  # walked without recursion: a value may nest up to json's own depth limit
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValueError("a text holds a NUL character (\\u0000)")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a text holds a lone surrogate (\\ud800-\\udfff: not a character)") from None
    return value


def parse_record(text) -> "Record":
    """A Record from one JSON Lines line (already decoded); ValueError naming the reason when it is not one."""
    data = parse_json_line(text)
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, expected an object")
    title = data.get("title")
    if not isinstance(title, str):
        raise ValueError("no title" if title is None else f"field title is {type(title).__name__}, expected text")
    if not clean_field(title):
        raise ValueError("no title (the title is empty)")
    paper_id = data.get("id")
    if isinstance(paper_id, bool) or not isinstance(paper_id, (str, int, type(None))):
        raise ValueError(f"field id is {type(paper_id).__name__}, expected text or an integer")
    keywords = data.get("keywords") or []
    # keywords as one text, as some exports write them: "k1；k2", "k1;k2" or "k1，k2" (a space does not separate)
    if isinstance(keywords, str):
        keywords = keywords.replace("；", ";").replace("，", ";").replace(",", ";").split(";")
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ValueError("field keywords is not a list of texts")
    year = data.get("year")
    if year in (None, ""):
        year = 0
    elif isinstance(year, str) and year.strip().isdigit():
        year = int(year)
    if isinstance(year, bool) or not isinstance(year, int) or not (year == 0 or YEAR_RANGE[0] <= year <= YEAR_RANGE[1]):
        raise ValueError(f"field year is {year!r}, expected a year between {YEAR_RANGE[0]} and {YEAR_RANGE[1]}")
    cleaned = [clean_field(k)[:MAX_FIELD_CHARS] for k in keywords]
    return Record(
        title=clean_field(title),
        paper_id="" if paper_id is None else _text(str(paper_id), "id"),
        keywords=tuple(k for k in cleaned if k)[:MAX_KEYWORDS],
        abstract=_text(data.get("abstract"), "abstract", MAX_ABSTRACT_CHARS),
        category=_text(data.get("category"), "category"),
        discipline=_text(data.get("discipline"), "discipline"),
        year=year,
    )


def record_line(record) -> str:
    """The JSON Lines line of a Record (what data/prepare_csl.py and data/make_sample.py write); empty fields left out."""
    data = {"id": record.paper_id, "title": record.title, "keywords": list(record.keywords)}
    data.update({"abstract": record.abstract, "category": record.category, "discipline": record.discipline})
    data["year"] = record.year
    return json.dumps({k: v for k, v in data.items() if v not in ("", [], 0)}, ensure_ascii=False)


def decode_corpus_line(raw, line_no, counter, records, seen_ids=None) -> "Record | str":
    """The document of one raw corpus line: a Record (records=True) or its text; a line that is undecodable, holds a
    NUL byte, is empty or (records) is not a paper record is kept as an empty document and counted in counter.
    seen_ids: {paper id: line} of the file's earlier records (filled here): a record repeating an id is kept empty."""
    try:
        text = raw.decode("utf-8").strip().lstrip("\ufeff")
    except UnicodeDecodeError:
        counter.skip(line_no, "invalid UTF-8 lines (kept as empty documents)")
        text = None
    if text and "\x00" in text:
        counter.skip(line_no, "lines with NUL bytes (kept as empty documents)")
        text = None
    if text == "":
        counter.skip(line_no, "empty documents (kept)")
    counter.kept += 1
    if not records:
        return text or ""
    if not text:
        return Record("")
    try:
        record = parse_record(text)
    except ValueError as e:
        counter.skip(line_no, "malformed records (kept as empty documents)", str(e))
        return Record("")
    if seen_ids is not None and record.paper_id:
        first = seen_ids.setdefault(record.paper_id, line_no)
        if first != line_no:
            counter.skip(
                line_no,
                "records repeating an earlier id (kept as empty documents)",
                f"id {record.paper_id!r} of line {first}",
            )
            return Record("")
    return record
