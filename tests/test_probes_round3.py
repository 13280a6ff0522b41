"""Defects of the third round of hostile-but-fair probing (issue 31, docs/robustness.md), each with the test that
failed before its fix: commands that replaced a directory or overwrote a database or model they did not write, a
damaged or foreign ranking directory, a fit that finds no gold, a half-filled collection, stale facets, filter
errors of many lines, a Lite engine that outlived its parent."""

import os

import pytest
from conftest import sample_file

from ns_common.cli import check_outputs, replaceable_dir
from ns_common.errors import BadInputError
from search.features import LexicalStats


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
