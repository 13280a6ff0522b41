"""Paper records (ns_common/records.py): parsing one record, a records corpus with malformed lines (kept as empty
documents at their line, counted in one warning), and insert.py on the bundled sample's papers.jsonl into Milvus
Lite (every row with its fields, idempotent, a malformed line inserted empty, a collection of the schema before the
record fields refused)."""

import json
import os

import numpy as np
import pytest

from ns_common.records import Record, parse_record, record_line

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPERS = os.path.join(REPO, "data", "sample", "milvus", "papers.jsonl")
TITLES = os.path.join(REPO, "data", "sample", "milvus", "milvus_data.csv")


# ---------------------------------------------------------------- one record


def test_parse_record_reads_every_field_and_fills_the_missing_ones():
    line = json.dumps(
        {
            "id": "csl-dev-00012",
            "title": " 基于深度学习的文本分类\t研究 ",
            "keywords": ["深度学习", " 文本分类 ", ""],
            "abstract": "摘要。",
            "category": "工学",
            "discipline": "计算机科学与技术",
            "year": 2019,
            "split": "dev",  # a field the schema does not know: ignored
        },
        ensure_ascii=False,
    )
    record = parse_record(line)
    assert record == Record(
        title="基于深度学习的文本分类 研究",
        paper_id="csl-dev-00012",
        keywords=("深度学习", "文本分类"),
        abstract="摘要。",
        category="工学",
        discipline="计算机科学与技术",
        year=2019,
    )
    assert parse_record(record_line(record)) == record  # what data/layout.py writes reads back the same
    assert parse_record('{"title": "只有标题"}') == Record("只有标题")
    assert parse_record('{"title": "t", "id": 12, "year": null, "keywords": null}') == Record("t", paper_id="12")


@pytest.mark.parametrize(
    "line, year",
    [('"2019"', 2019), ('" 2019 "', 2019), ('""', 0), ("null", 0), ("0", 0), ("9999", 9999)],
)
def test_year_as_a_number_or_digits(line, year):
    assert parse_record(f'{{"title": "t", "year": {line}}}').year == year


@pytest.mark.parametrize(
    "keywords, expected",
    [
        ('"深度学习；机器学习"', ("深度学习", "机器学习")),
        ('"a;b"', ("a", "b")),
        ('"甲，乙, 丙"', ("甲", "乙", "丙")),
        ('"deep learning"', ("deep learning",)),  # a space does not separate keywords
        ('"；；"', ()),
        ("[]", ()),
    ],
)
def test_keywords_as_one_text_are_split(keywords, expected):
    assert parse_record(f'{{"title": "t", "keywords": {keywords}}}').keywords == expected


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{not json", "not JSON"),
        ('["title"]', "a JSON list, expected an object"),
        ('"a string"', "a JSON str, expected an object"),
        ('{"id": "x"}', "no title"),
        ('{"title": null}', "no title"),
        ('{"title": ""}', "no title"),
        ('{"title": "   "}', "no title (the title is empty)"),
        ('{"title": 5}', "field title is int, expected text"),
        ('{"title": ["x"]}', "field title is list, expected text"),
        ('{"title": "t", "id": true}', "field id is bool"),
        ('{"title": "t", "id": [1]}', "field id is list"),
        ('{"title": "t", "keywords": 7}', "field keywords is not a list of texts"),
        ('{"title": "t", "keywords": ["a", 3]}', "field keywords is not a list of texts"),
        ('{"title": "t", "category": 5}', "field category is int, expected text"),
        ('{"title": "t", "abstract": {"zh": "x"}}', "field abstract is dict, expected text"),
        ('{"title": "t", "year": "abc"}', "field year is 'abc', expected a year between 1 and 9999"),
        ('{"title": "t", "year": "-5"}', "field year is '-5'"),
        ('{"title": "t", "year": 10000}', "field year is 10000"),
        ('{"title": "t", "year": 2019.5}', "field year is 2019.5"),
        ('{"title": "t", "year": true}', "field year is True"),
    ],
)
def test_a_malformed_record_is_a_value_error_naming_why(line, reason):
    with pytest.raises(ValueError) as error:
        parse_record(line)
    assert reason in str(error.value)


def test_long_fields_are_cut_to_what_the_collection_holds():
    from ns_common.records import MAX_ABSTRACT_CHARS, MAX_FIELD_CHARS, MAX_KEYWORDS

    line = json.dumps(
        {"title": "t", "category": "类" * 300, "abstract": "字" * 5000, "keywords": [f"k{i}" for i in range(70)]}
    )
    record = parse_record(line)
    assert len(record.category) == MAX_FIELD_CHARS and len(record.abstract) == MAX_ABSTRACT_CHARS
    assert record.keywords == tuple(f"k{i}" for i in range(MAX_KEYWORDS))


# ---------------------------------------------------------------- a records corpus with malformed lines


def write_records_corpus(path):
    lines = [
        '{"title": "第一篇", "category": "工学", "year": 2019}',  # 1
        "not json at all",  # 2
        '["a", "list"]',  # 3
        '{"abstract": "没有标题"}',  # 4
        '{"title": "第五篇", "year": "abc"}',  # 5
        '{"title": "第六篇", "keywords": "甲；乙"}',  # 6
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_malformed_records_are_kept_as_empty_documents_and_named_in_one_warning(tmp_path, warnings_logged):
    from ns_common.io import read_corpus
    from recall.milvus.data import corpus_fingerprint, iter_corpus_chunks, iter_record_chunks

    path = write_records_corpus(tmp_path / "papers.jsonl")
    chunks = list(iter_record_chunks(path, 4))
    assert [first for first, _ in chunks] == [0, 4]
    records = [record for _, chunk in chunks for record in chunk]
    assert [r.title for r in records] == ["第一篇", "", "", "", "", "第六篇"]  # line i is still document i
    assert records[0].category == "工学" and records[0].year == 2019 and records[5].keywords == ("甲", "乙")
    assert records[1] == Record("")  # no field of a malformed record survives
    assert len(warnings_logged) == 1, warnings_logged
    warning = warnings_logged[0]
    assert path in warning and "4 malformed records (kept as empty documents) (line 2, 3, 4, 5" in warning
    assert "first line 2: not JSON" in warning

    for read in (read_corpus, lambda p: [t for _, chunk in iter_corpus_chunks(p, 100) for t in chunk]):
        warnings_logged.clear()
        assert read(path) == ["第一篇", "", "", "", "", "第六篇"]
        assert len(warnings_logged) == 1 and "(line 2, 3, 4, 5" in warnings_logged[0], warnings_logged
    # the same titles as a title file: the same corpus fingerprint (insert.py's check against the embeddings)
    titles = tmp_path / "titles.csv"
    titles.write_text("第一篇\n\n\n\n\n第六篇\n", encoding="utf-8")
    assert corpus_fingerprint(path) == corpus_fingerprint(str(titles))


# every kind of malformed line a records corpus may hold, each as line 2 of a three-line file (raw bytes); the last
# ones crashed insert, feature_extract and prepare_csl before issue 31, or were accepted silently
MALFORMED_LINES = {
    "not JSON": b"{not json",
    "truncated object": b'{"title": "t"',
    "text after the object": b'{"title": "t"} x',
    "single quotes": b"{'title': 't'}",
    "raw CR inside a text": b'{"title": "a\rb"}',
    "raw tab inside a text": b'{"title": "a\tb"}',
    "an array at top level": b'["title"]',
    "a string at top level": b'"a title"',
    "a number at top level": b"5",
    "null at top level": b"null",
    "NaN literal": b'{"title": "t", "year": NaN}',
    "Infinity literal": b'{"title": "t", "year": Infinity}',
    "no title": b'{"id": "x"}',
    "empty title": b'{"title": ""}',
    "blank title": b'{"title": " \\t\\u3000 "}',
    "title a number": b'{"title": 5}',
    "title a list": b'{"title": ["x"]}',
    "title an object": b'{"title": {"zh": "x"}}',
    "id a bool": b'{"title": "t", "id": true}',
    "id a list": b'{"title": "t", "id": [1]}',
    "keywords a number": b'{"title": "t", "keywords": 7}',
    "keywords an object": b'{"title": "t", "keywords": {"a": 1}}',
    "a keyword a number": b'{"title": "t", "keywords": ["a", 3]}',
    "category a number": b'{"title": "t", "category": 5}',
    "abstract an object": b'{"title": "t", "abstract": {"zh": "x"}}',
    "year text": b'{"title": "t", "year": "abc"}',
    "year negative": b'{"title": "t", "year": -1}',
    "year too large": b'{"title": "t", "year": 10000}',
    "year a fraction": b'{"title": "t", "year": 2019.5}',
    "year a list": b'{"title": "t", "year": [2019]}',
    "invalid UTF-8": '{"title": "中文"}'.encode("gbk"),
    "a NUL byte": b'{"title": "a\x00b"}',
    "empty line": b"",
    "a BOM only": b"\xef\xbb\xbf",
    # issue 31
    "3,000 nested brackets": b'{"title": "t", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    "an integer over 4,300 digits": b'{"title": "t", "year": ' + b"9" * 5000 + b"}",
    "an escaped lone surrogate": b'{"title": "\\ud800"}',
    "an escaped lone surrogate in a keyword": b'{"title": "t", "keywords": ["\\udfff"]}',
    "an escaped NUL in the title": b'{"title": "a\\u0000b"}',
    "a repeated paper id": b'{"id": "p1", "title": "again"}',
}


@pytest.mark.parametrize("kind", list(MALFORMED_LINES))
def test_each_malformed_line_is_kept_empty_and_counted_with_its_line_number(tmp_path, warnings_logged, kind):
    from ns_common.io import read_corpus
    from recall.milvus.data import corpus_summary, iter_corpus_chunks, iter_record_chunks

    path = tmp_path / "papers.jsonl"
    good = ['{"id": "p1", "title": "第一篇", "year": 2019}', '{"id": "p3", "title": "第三篇"}']
    path.write_bytes(good[0].encode() + b"\n" + MALFORMED_LINES[kind] + b"\n" + good[1].encode() + b"\n")
    records = [record for _, chunk in iter_record_chunks(str(path), 2) for record in chunk]
    assert records == [Record("第一篇", paper_id="p1", year=2019), Record(""), Record("第三篇", paper_id="p3")]
    assert [t for _, chunk in iter_corpus_chunks(str(path), 2, start_line=2) for t in chunk] == ["第三篇"]
    assert read_corpus(str(path)) == ["第一篇", "", "第三篇"]
    facets = {}
    assert corpus_summary(str(path), facets)[::2] == (3, 2)  # what insert and feature_extract count: no crash
    assert facets["year"] == [2019, 2019]
    # one warning per whole reading (a resumed one from line 3 has nothing to say), naming the file and the line
    assert len(warnings_logged) == 2, warnings_logged
    for warning in warnings_logged:
        assert str(path) in warning and "skipped 1:" in warning and "(line 2" in warning, warning


CRASHING_LINES = ("3,000 nested brackets", "an integer over 4,300 digits", "an escaped lone surrogate")


def test_prepare_csl_skips_the_lines_that_crashed_it_and_repeated_ids(tmp_path, capsys, caplog):
    import sys

    sys.path.insert(0, os.path.join(REPO, "data"))
    import prepare_csl

    kinds = CRASHING_LINES + ("an escaped NUL in the title", "a repeated paper id")
    papers = [b'{"id": "p1", "title": "\xe7\xac\xac\xe4\xb8\x80\xe7\xaf\x87", "keywords": ["k1", "k2"]}']
    papers += [MALFORMED_LINES[kind] for kind in kinds]
    papers += [f'{{"id": "p{i}", "title": "标题{i}", "keywords": ["词{i}", "语{i}"]}}'.encode() for i in range(2, 30)]
    src = tmp_path / "csl"
    src.mkdir()
    (src / "papers.jsonl").write_bytes(b"\n".join(papers) + b"\n")
    (src / "abstracts.jsonl").write_bytes(b'{"abstract": "\\ud800"}\n{"abstract": "\xe6\x91\x98\xe8\xa6\x81"}\n')
    prepare_csl.main(["--csl_dir", str(src), "--output_dir", str(tmp_path / "out")])
    assert "wrote" in capsys.readouterr().out
    with open(tmp_path / "out" / "milvus" / "papers.jsonl", encoding="utf-8") as f:
        titles = [json.loads(line)["title"] for line in f]
    assert titles == ["第一篇"] + [f"标题{i}" for i in range(2, 30)]
    papers_warning, abstracts_warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "2 invalid JSON (line 2, 3; first line 2: not JSON (nested too deeply))" in papers_warning
    assert "2 lines holding a NUL or a lone surrogate (line 4, 5;" in papers_warning
    assert "1 records repeating an earlier id (line 6)" in papers_warning
    assert "abstracts.jsonl" in abstracts_warning and "lone surrogate (line 1;" in abstracts_warning


def test_the_sample_records_are_the_sample_titles():
    from recall.milvus.data import corpus_facets, corpus_fingerprint

    assert corpus_fingerprint(PAPERS) == corpus_fingerprint(TITLES)
    facets = corpus_facets(PAPERS)
    assert sum(facets["category"].values()) == 500 and facets["discipline"] == {}
    assert facets["year"] == [2005, 2024]


# ---------------------------------------------------------------- insert.py with paper records (Milvus Lite)


@pytest.fixture(scope="module")
def unit_vectors(tmp_path_factory):
    """500 random unit vectors for the sample's 500 papers (no model: insert stores what it is given)."""
    path = str(tmp_path_factory.mktemp("vectors") / "corpus_embedding.npy")
    vectors = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
    np.save(path, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return path


def sample_records():
    with open(PAPERS, encoding="utf-8") as f:
        return [parse_record(line) for line in f]


def test_insert_stores_the_records_fields_and_a_rerun_changes_nothing(unit_vectors, tmp_path):
    from recall.milvus import insert
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    uri = str(tmp_path / "papers.db")
    argv = ["--data_path", PAPERS, "--embedding_path", unit_vectors, "--uri", uri]
    assert insert.main(argv) == 500
    assert insert.main(argv) == 500  # upserted by id: nothing duplicated
    papers = sample_records()
    category = papers[7].category
    seventh = "sample-00007"  # records with ids: the collection names papers by them (primary_key paper_id)
    with MilvusSearcher(load_config(uri=uri)) as searcher:
        assert searcher.keyed_by_paper
        stored = searcher.get_records(["sample-00000", seventh, "sample-00499"])
        assert len(stored) == 3 and stored[seventh]["text"] == papers[7].title
        assert stored[seventh]["abstract"] == papers[7].abstract
        assert stored[seventh]["fields"]["category"] == category and stored[seventh]["fields"]["year"] == papers[7].year
        assert stored[seventh]["fields"]["keywords"] == list(papers[7].keywords)
        assert stored[seventh]["fields"]["paper_id"] == seventh
        assert searcher.facets()["category"][category] == sum(p.category == category for p in papers)
        hits = searcher.search(papers[7].title, top_k=10, mode="bm25", filter=f'category == "{category}"')
        assert hits and hits[0].id == seventh and all(h.fields["category"] == category for h in hits)
        hits = searcher.search(papers[7].title, top_k=10, mode="bm25", filter=f"year > {papers[7].year}")
        assert hits and seventh not in [h.id for h in hits] and all(h.fields["year"] > papers[7].year for h in hits)


def test_the_embeddings_of_the_titles_serve_their_records(unit_vectors, tmp_path, capsys):
    """What the pipeline does: vectors extracted from milvus_data.csv (feature_extract's record beside them names that
    corpus) inserted with papers.jsonl, the same titles line for line, pass insert's corpus check; records of the
    same papers in another order are refused."""
    import shutil

    from recall.milvus import insert
    from recall.milvus.data import corpus_fingerprint
    from recall.milvus.feature_extract import provenance_file

    npy = str(tmp_path / "corpus_embedding.npy")
    shutil.copyfile(unit_vectors, npy)
    documents, sha1 = corpus_fingerprint(TITLES)
    with open(provenance_file(npy), "w", encoding="utf-8") as f:
        json.dump({"corpus": {"documents": documents, "sha1": sha1, "file": TITLES}}, f)
    assert insert.main(["--data_path", PAPERS, "--embedding_path", npy, "--uri", str(tmp_path / "a.db")]) == 500

    with open(PAPERS, encoding="utf-8") as f:
        lines = f.readlines()
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("".join(lines[1:] + lines[:1]), encoding="utf-8")
    with pytest.raises(SystemExit):
        insert.main(["--data_path", str(shuffled), "--embedding_path", npy, "--uri", str(tmp_path / "b.db")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "embeds another corpus (500 documents" in errors[0], errors


def test_a_malformed_record_is_inserted_empty_and_named(unit_vectors, tmp_path, warnings_logged):
    from recall.milvus import insert
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    with open(PAPERS, encoding="utf-8") as f:
        lines = f.readlines()
    lines[9] = '{"title": "第十篇", "year": "abc"}\n'  # line 10
    broken = tmp_path / "papers.jsonl"
    broken.write_text("".join(lines), encoding="utf-8")
    uri = str(tmp_path / "broken.db")
    # keyed by corpus lines (a malformed record is then an empty row at its line; keyed by paper ids it is skipped)
    argv = ["--data_path", str(broken), "--embedding_path", unit_vectors, "--uri", uri, "--primary_key", "line"]
    assert insert.main(argv) == 500
    named = [w for w in warnings_logged if "malformed records" in w]
    assert named and all("(line 10; first line 10: field year is 'abc'" in w for w in named), warnings_logged
    with MilvusSearcher(load_config(uri=uri)) as searcher:
        stored = searcher.get_records([8, 9, 10])
    assert stored[9]["text"] == "" and stored[9]["fields"] == {}  # empty fields are not shown
    assert stored[10]["text"] == sample_records()[10].title


def test_a_records_file_without_one_paper_is_one_line_error(unit_vectors, tmp_path, capsys):
    from recall.milvus import insert

    bad = tmp_path / "papers.jsonl"
    bad.write_text('{"no": "title"}\n' * 500, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        insert.main(["--data_path", str(bad), "--embedding_path", unit_vectors, "--uri", str(tmp_path / "x.db")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and len(err) == 1 and "no line holds text" in err[0], err
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("kind", ["schema 2", "no record fields"])
def test_a_collection_from_before_the_record_fields_must_be_rebuilt(unit_vectors, tmp_path, capsys, kind):
    """A collection as schema version 2 built it (its description says so), or one whose description claims the
    current version but lacks the record fields: refused in one line naming insert ... --drop, which rebuilds it."""
    from pymilvus import DataType, MilvusClient

    from recall.milvus import insert, store
    from recall.milvus.config import load_config

    uri = str(tmp_path / "old.db")
    version = 2 if kind == "schema 2" else store.SCHEMA_VERSION
    client = MilvusClient(uri)
    schema = MilvusClient.create_schema(
        auto_id=False, enable_dynamic_field=False, description=json.dumps({"schema": version})
    )
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=2048)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=8)
    index = client.prepare_index_params()
    index.add_index(field_name="embedding", index_name="embedding", index_type="FLAT", metric_type="IP")
    client.create_collection("literature_search", schema=schema, index_params=index)
    store.close(client, load_config(uri=uri))

    argv = ["--data_path", PAPERS, "--embedding_path", unit_vectors, "--uri", uri]
    with pytest.raises(SystemExit) as exit_info:
        insert.main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert "insert ... --drop" in errors[0], errors
    expected = "has schema version 2" if kind == "schema 2" else "lacks the paper record fields"
    assert expected in errors[0], errors
    assert insert.main(argv + ["--drop"]) == 500
