"""Defects of the third round of hostile-but-fair probing (issue 31, docs/robustness.md), each with the test that
failed before its fix: commands that replaced a directory or overwrote a database or model they did not write, a
damaged or foreign ranking directory, a fit that finds no gold, a half-filled collection, stale facets, filter
errors of many lines, a Lite engine that outlived its parent."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, sample_file

from ns_common.cli import check_outputs, replaceable_dir
from ns_common.errors import BadInputError, ModelMismatchError
from search.features import FEATURES, LexicalStats


def one_error(capsys, call, code=2):
    """Runs an entry point's main that must refuse: exit `code`, exactly one `error:` line, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        call()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == code and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


def snapshot(directory):
    """{relative path: bytes} of every file under directory."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = f.read()
    return found


# --- 1. search.fit --output_dir replaced whatever directory it was given ------------------------------------------


def test_fit_never_replaces_a_directory_it_did_not_write(tmp_path, capsys, monkeypatch):
    from search import fit

    export = tmp_path / "export"
    (export / "recall").mkdir(parents=True)
    (export / "recall" / "inference.pdiparams").write_bytes(b"weights")
    (export / "reranker").mkdir()
    (export / "reranker" / "inference.pdiparams").write_bytes(b"reranker weights")
    database = tmp_path / "neural_search.db"
    database.write_bytes(b"database")
    own = tmp_path / "ranking"  # an earlier ranking with a file someone put there
    own.mkdir()
    (own / "ranking.json").write_text("{}")
    (own / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    base = ["--train_file", sample_file("recall", "train.csv"), "--corpus_file", sample_file("recall", "corpus.csv")]
    monkeypatch.chdir(tmp_path)
    for output_dir, words in (
        (str(export), "holds no ranking.json"),
        (".", "holds no ranking.json"),
        (str(own), "'notes.txt', which this command did not write"),
    ):
        line = one_error(capsys, lambda o=output_dir: fit.main(base + ["--output_dir", o, "--uri", str(database)]))
        assert f"--output_dir {output_dir}" in line and words in line, line
    assert snapshot(tmp_path) == before, "a refused fit changed a file"
    # its own output (the marker and nothing else it did not write) or an empty directory may be replaced
    (own / "notes.txt").unlink()
    (own / "lexical.txt").write_text("old model")
    assert replaceable_dir(str(own), fit.RANKING_FILES) is None
    assert replaceable_dir(str(tmp_path / "empty_or_absent"), fit.RANKING_FILES) is None
    # the writer checks again before it replaces (the directory may have changed during the fit)
    (own / "notes.txt").write_text("mine")
    with pytest.raises(BadInputError, match="notes.txt"):
        fit.write_ranking(str(own), {}, LexicalStats.from_texts(["语言 学"]), {})
    assert sorted(os.listdir(tmp_path)) == sorted(["export", "neural_search.db", "ranking"]), "a staging dir was left"


def test_feature_extract_never_replaces_a_chunk_directory_it_did_not_write(tmp_path, capsys, tiny_ernie):
    from recall.milvus import feature_extract

    parts = tmp_path / "corpus_embedding.parts"  # where the command keeps its chunks: here a user's folder
    parts.mkdir()
    (parts / "notes.txt").write_text("mine")
    argv = ["--corpus_file", sample_file("recall", "corpus.csv"), "--model_dir", tiny_ernie]
    line = one_error(
        capsys, lambda: feature_extract.main(argv + ["--output_path", str(tmp_path / "corpus_embedding.npy")])
    )
    assert str(parts) in line and "holds no manifest.json" in line, line
    assert (parts / "notes.txt").read_text() == "mine"


# --- 2. an output over the database or a model file -------------------------------------------------------------


def test_outputs_never_land_on_the_database_or_inside_a_model(tmp_path, capsys, tiny_ernie):
    from search import query

    database = tmp_path / "neural_search.db"
    database.write_bytes(b"database")
    queries = tmp_path / "queries.csv"
    queries.write_text("语言\t语言学\n", encoding="utf-8")
    base = ["--query_file", str(queries), "--mode", "bm25", "--uri", str(database)]
    line = one_error(capsys, lambda: query.main(base + ["--recall_result_file", str(database)]))
    assert "is --uri of this run" in line, line
    model_file = os.path.join(tiny_ernie, "model_state.pdparams")
    line = one_error(capsys, lambda: query.main(base + ["--model_dir", tiny_ernie, "--recall_result_file", model_file]))
    assert "--model_dir of this run" in line and "inside" in line, line
    assert database.read_bytes() == b"database"
    # an output directory inside an input directory, and the library call itself
    with pytest.raises(BadInputError, match="inside"):
        check_outputs(dirs=[("save_dir", os.path.join(tiny_ernie, "sub"))], inputs=[("model_dir", tiny_ernie)])


# --- 5. a damaged or foreign ranking directory -----------------------------------------------------------------


def write_small_ranking(directory, seed=0):
    """A real ranking directory as search.fit writes it (write_ranking), its lexical model fitted on made-up rows."""
    import numpy as np

    from search import fit, learn
    from search.features import FEATURES

    rng = np.random.RandomState(seed)
    features = [rng.rand(8, len(FEATURES)) for _ in range(12)]
    labels = [np.eye(8, dtype=np.int32)[rng.randint(8)] for _ in range(12)]
    data = learn.GroupedData(features, labels, [f"q{i}" for i in range(12)])
    booster = learn.fit_ranker(data, {"n_trees": 5, "num_leaves": 3, "min_child_samples": 2}, seed=seed)
    spec = {"format": fit.FORMAT, "candidates": 50, "chosen": "lexical", "neural": None}
    spec["lexical"] = {"features": list(FEATURES), "params": {}, "model_file": "lexical.txt", "set": "every"}
    spec["fitted_with"] = {"corpus": None, "recall_model": None, "reranker": None}
    fit.write_ranking(str(directory), spec, LexicalStats.from_texts(["语言 文化", "文化 差异"]), {"lexical": booster})
    return str(directory)


def edit_spec(directory, change):
    path = os.path.join(directory, "ranking.json")
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    change(spec)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f)


def truncate(path):
    with open(path, "rb") as f:
        text = f.read()
    with open(path, "wb") as f:
        f.write(text[: len(text) // 2])


DAMAGES = {
    "lexical.txt truncated": (lambda d: truncate(os.path.join(d, "lexical.txt")), "lexical.txt: not the file"),
    "lexical.txt empty": (lambda d: open(os.path.join(d, "lexical.txt"), "w").close(), "lexical.txt: not the file"),
    "lexical.txt missing": (lambda d: os.remove(os.path.join(d, "lexical.txt")), "lexical.txt: missing"),
    "lexical.txt of another fit": (
        lambda d: shutil.copyfile(
            os.path.join(write_small_ranking(d + "_other", seed=5), "lexical.txt"), d + "/lexical.txt"
        ),
        "lexical.txt: not the file",
    ),
    "the statistics changed": (
        lambda d: truncate(os.path.join(d, "lexical_stats.json")),
        "lexical_stats.json: not the file",
    ),
    "an unknown feature name": (
        lambda d: edit_spec(d, lambda s: s["lexical"]["features"].__setitem__(0, "bm25_typo")),
        "unknown feature 'bm25_typo'",
    ),
    "features as a string": (
        lambda d: edit_spec(d, lambda s: s["lexical"].__setitem__("features", "bm25_rel")),
        "features must be a list of feature names, got 'bm25_rel'",
    ),
    "fewer features than the model": (
        lambda d: edit_spec(d, lambda s: s["lexical"]["features"].pop()),
        "lexical.txt takes the features",
    ),
    "features reordered": (
        lambda d: edit_spec(d, lambda s: s["lexical"]["features"].reverse()),
        "lexical.txt takes the features",
    ),
    "a model file outside the directory": (
        lambda d: edit_spec(d, lambda s: s["lexical"].__setitem__("model_file", "../lexical.txt")),
        "is not a file of the ranking directory",
    ),
    "no checksums (an older fit)": (lambda d: edit_spec(d, lambda s: s.pop("sha1")), "keeps no checksum of"),
    "ranking.json a list": (lambda d: open(os.path.join(d, "ranking.json"), "w").write("[]"), "not a ranking written"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_or_foreign_ranking_is_one_model_mismatch_line(tmp_path, damage):
    from search.system import Ranking

    directory = write_small_ranking(tmp_path / "ranking")
    assert Ranking.load(directory).lexical_model.num_feature() == len(FEATURES)  # intact: served
    harm, words = DAMAGES[damage]
    harm(directory)
    with pytest.raises(ModelMismatchError) as error:
        Ranking.load(directory)
    message = str(error.value)
    assert words in message and "\n" not in message and "refit" in message, message


def test_query_on_a_truncated_ranking_exits_with_one_line_instead_of_aborting(tmp_path):
    """LightGBM aborted the process (SIGABRT, exit 134) on a truncated lexical.txt: run as the user does."""
    directory = write_small_ranking(tmp_path / "ranking")
    truncate(os.path.join(directory, "lexical.txt"))
    done = subprocess.run(
        [sys.executable, "-m", "search.query", "--query", "语言", "--ranking_dir", directory],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (done.returncode, done.stderr)
    assert "lexical.txt: not the file search.fit wrote" in lines[0]


# --- a Milvus Lite collection of the sample's papers (random vectors: no model needed) ---------------------------

PAPERS = os.path.join(REPO, "data", "sample", "milvus", "papers.jsonl")


def unit_vectors(path, n, dim=8):
    import numpy as np

    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    np.save(path, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return str(path)


def insert_corpus(corpus, uri, *extra):
    from recall.milvus import insert

    with open(corpus, "rb") as f:
        n = sum(1 for _ in f)
    npy = unit_vectors(os.path.join(os.path.dirname(uri), os.path.basename(uri) + ".npy"), n)
    return insert.main(["--data_path", corpus, "--embedding_path", npy, "--uri", uri, *extra])


# --- 12. a fit where no training query finds its gold ---------------------------------------------------------


def test_fit_where_no_query_finds_its_gold_is_one_line_naming_the_file(tmp_path, capsys):
    from search import fit

    as_titles = tmp_path / "papers_as_titles.csv"  # a records file's JSON lines given as a title corpus
    shutil.copyfile(PAPERS, as_titles)
    uri = str(tmp_path / "titles.db")
    assert insert_corpus(str(as_titles), uri) == 500
    train = sample_file("recall", "train.csv")
    argv = ["--train_file", train, "--corpus_file", str(as_titles), "--uri", uri]
    line = one_error(capsys, lambda: fit.main(argv + ["--output_dir", str(tmp_path / "ranking")]))
    assert line.startswith(f"error: {train}: 0 of ") and "check that the gold titles are the texts" in line, line
    assert str(as_titles) in line and not os.path.exists(tmp_path / "ranking")


# --- 7. a collection half-filled by a stopped insert ------------------------------------------------------------


def test_a_half_filled_collection_is_served_with_one_warning_naming_resume(tmp_path, warnings_logged):
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    uri = str(tmp_path / "papers.db")
    # what a killed insert leaves: the first batches only (--max_batches stops as a kill -9 would, rows kept)
    line_keys = ("--primary_key", "line")  # --resume is the line-keyed collection's (one keyed by ids rolls forward)
    assert insert_corpus(PAPERS, uri, "--batch_size", "100", "--max_batches", "2", *line_keys) is None
    warnings_logged.clear()
    with MilvusSearcher(load_config(uri=uri)) as searcher:
        assert searcher.search("语言", top_k=5, mode="bm25")  # served
    assert len(warnings_logged) == 1, warnings_logged
    assert "holds 200 rows of the 500 documents of its corpus" in warnings_logged[0]
    assert "--resume" in warnings_logged[0] and uri in warnings_logged[0]
    assert insert_corpus(PAPERS, uri, "--batch_size", "100", "--resume", *line_keys) == 500
    warnings_logged.clear()
    with MilvusSearcher(load_config(uri=uri)) as searcher:
        assert searcher.incomplete is None
    assert warnings_logged == []


# --- 9. facets of a collection whose records were upserted with other fields ---------------------------------


def test_facets_follow_the_rows_after_an_upsert_renames_a_category(tmp_path):
    from ns_common.records import parse_record, record_line
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    uri = str(tmp_path / "papers.db")
    assert insert_corpus(PAPERS, uri) == 500
    with open(PAPERS, encoding="utf-8") as f:
        records = [parse_record(line) for line in f]
    old = records[0].category
    renamed = tmp_path / "papers.jsonl"  # the same titles (the same corpus to insert), one category renamed
    renamed.write_text(
        "".join(
            record_line(dataclasses.replace(r, category=old + "（新）" if r.category == old else r.category)) + "\n"
            for r in records
        ),
        encoding="utf-8",
    )
    assert insert_corpus(str(renamed), uri) == 500  # accepted as an upsert of the same corpus
    with MilvusSearcher(load_config(uri=uri)) as searcher:
        facets = searcher.facets()
        assert old not in facets["category"]
        assert facets["category"][old + "（新）"] == sum(r.category == old for r in records)
        assert facets["year"] == [min(r.year for r in records if r.year), max(r.year for r in records)]
        hits = searcher.search(records[0].title, top_k=5, mode="bm25", filter=f'category == "{old}（新）"')
        assert hits and hits[0].id == records[0].paper_id  # keyed by the papers' own ids (the default)


# --- 10. a bad --filter printed the engine's parser and C++ lines beside the error ------------------------------


@pytest.mark.parametrize(
    "expression, words",
    [
        ("category == “语言学”", "is not a quote Milvus knows"),
        ('category == "语言学', "is never closed"),
        ("no_such_field == 1", "Milvus cannot evaluate it"),
        ("category ==", "Milvus cannot evaluate it"),
        ("year >= 2015 and and", "Milvus cannot evaluate it"),
    ],
)
def test_a_bad_filter_is_exactly_one_stderr_line(tmp_path, expression, words):
    uri = str(tmp_path / "papers.db")
    assert insert_corpus(PAPERS, uri) == 500
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "search.query",
            "--query",
            "语言",
            "--mode",
            "bm25",
            "--uri",
            uri,
            "--filter",
            expression,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: filter {expression!r}: ") and words in done.stderr, done.stderr


# --- 8. local_server --engine lite killed with -9 left its engine serving, and the database unlocked -------------


def start_lite_launcher(data_dir):
    """`python -m recall.milvus.local_server --engine lite` as a user starts it: (its process, the engine's pid)."""
    launcher = subprocess.Popen(
        [sys.executable, "-m", "recall.milvus.local_server", "--engine", "lite", "--data_dir", data_dir],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in launcher.stdout:
        seen.append(line)
        if line.startswith("Milvus server at"):
            engine = [int(x.split("pid ")[1].split(")")[0]) for x in seen if "milvus-lite engine (pid" in x]
            return launcher, engine[0]
    raise AssertionError(f"the launcher ended: {''.join(seen)}")


def alive(pid):
    """Whether process pid runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_lite_launcher_takes_its_engine_along_and_the_database_stays_locked_meanwhile(tmp_path):
    data_dir = str(tmp_path / "lite")
    launcher, engine = start_lite_launcher(data_dir)
    try:
        assert alive(engine)
        second = subprocess.run(
            [sys.executable, "-m", "recall.milvus.local_server", "--engine", "lite", "--data_dir", data_dir],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1 and "is open in another process" in lines[0], second.stderr
        client = subprocess.run(  # a Milvus Lite client on the served file is refused too
            [sys.executable, "-m", "search.query", "--query", "语言", "--mode", "bm25"]
            + ["--uri", os.path.join(data_dir, "milvus.db")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert client.returncode == 1 and "another process holds the lock" in client.stderr, client.stderr
        launcher.kill()  # kill -9: no handler of the launcher runs
        launcher.wait(timeout=30)
        deadline = time.time() + 30
        while alive(engine) and time.time() < deadline:
            time.sleep(0.2)
        assert not alive(engine), "the engine outlived its launcher"
        relaunched, engine = start_lite_launcher(data_dir)  # the file is free again
        relaunched.terminate()
        relaunched.wait(timeout=60)
        assert not alive(engine)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if alive(engine):
            os.kill(engine, signal.SIGKILL)
