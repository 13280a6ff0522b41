"""Defects found by hostile-but-fair probing (docs/robustness.md), each with the test that failed before its fix:
outputs that overwrite an input, writes that are not atomic, titles whose inner whitespace was collapsed, a
collection not tied to its corpus or model, --max_seq_length above the model's positions, CSL JSON lines that are
not objects, the Python API exiting on a numpy top_k, gold pairs checked after the output was written, a --config
that is not UTF-8, an empty recall file scored as zeros, NUL bytes in text files."""

import json
import os
import random

import numpy as np
import pytest
from conftest import sample_file

from ns_common.cli import check_outputs
from ns_common.errors import BadInputError, ConfigError, ModelMismatchError
from ns_common.io import (
    SkipCounter,
    atomic_write,
    clean_field,
    read_corpus,
    read_fields,
    read_recall_result,
    weights_fingerprint,
    write_lines,
)

EMB = 16


def one_error(capsys, call):
    """Runs an entry point's main that must refuse: exit 2, exactly one `error:` line, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        call()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


# ------------------------------------------------------------------ 1, 2: outputs


def test_check_outputs_refuses_an_input_a_directory_and_an_unwritable_parent(tmp_path):
    gold = tmp_path / "dev.csv"
    gold.write_text("q\td\n", encoding="utf-8")
    os.symlink(gold, tmp_path / "link.csv")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for files, words in (
        ([("recall_result_file", str(gold))], "--query_file"),
        ([("out", str(tmp_path / "link.csv"))], "--query_file"),
        ([("out", str(tmp_path))], "is a directory"),
        ([("out", str(blocker / "a" / "b.txt"))], "not a directory"),
    ):
        with pytest.raises(BadInputError, match=words):
            check_outputs(files=files, inputs=[("query_file", str(gold))])
    with pytest.raises(BadInputError, match="--output_dir"):
        check_outputs(dirs=[("output_dir", str(blocker))])
    check_outputs(
        files=[("out", str(tmp_path / "new" / "deeper" / "r.txt"))],
        dirs=[("d", str(tmp_path / "n2"))],
        inputs=[str(gold)],
    )


def test_rerank_results_refuses_its_gold_file_as_output(tmp_path, capsys, tiny_ernie_gram):
    from ernie_matching import rerank_results

    gold = tmp_path / "dev.csv"
    gold.write_text("语言\t语言学\n", encoding="utf-8")
    recall = tmp_path / "recall.txt"
    recall.write_text("语言\t语言学\t0.9\n", encoding="utf-8")
    before = gold.read_bytes()
    line = one_error(
        capsys,
        lambda: rerank_results.main(
            [
                "--recall_result_file",
                str(recall),
                "--similar_text_pair_file",
                str(gold),
                "--output_file",
                str(gold),
                "--model_dir",
                tiny_ernie_gram,
            ]
        ),
    )
    assert "--output_file" in line and "--similar_text_pair_file" in line
    assert gold.read_bytes() == before


def test_evaluate_refuses_its_recall_file_as_output_json(tmp_path, capsys):
    from ns_common import evaluate

    recall = tmp_path / "recall.txt"
    recall.write_text("语言\t语言学\t0.9\n", encoding="utf-8")
    before = recall.read_bytes()
    line = one_error(
        capsys,
        lambda: evaluate.main(
            [
                "--similar_text_pair_file",
                sample_file("recall", "dev.csv"),
                "--recall_result_file",
                str(recall),
                "--output_json",
                str(recall),
            ]
        ),
    )
    assert "--output_json" in line and recall.read_bytes() == before


def test_atomic_write_keeps_the_old_file_on_an_error_and_leaves_no_temp(tmp_path):
    path = tmp_path / "result.txt"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_write(str(path)) as f:
        f.write("half of the new")
        raise RuntimeError("killed")
    assert path.read_text(encoding="utf-8") == "old\n" and os.listdir(tmp_path) == ["result.txt"]
    write_lines(str(path), [("a", "b")])
    assert path.read_text(encoding="utf-8") == "a\tb\n" and os.listdir(tmp_path) == ["result.txt"]


# ------------------------------------------------------------------ 3: whitespace inside titles


def test_titles_keep_inner_whitespace_and_evaluate_agrees_with_the_writer(tmp_path):
    from ns_common.evaluate import evaluate_file, recall_metrics

    titles = ["中西方\u3000语言差异", "语言\u00a0文化", "语言  与  文化", "普通标题"]
    gold = tmp_path / "gold.csv"
    write_lines(str(gold), [(f"查询{i}", t) for i, t in enumerate(titles)])
    assert clean_field(" a\u3000b  c\u00a0d\te\r\nf ") == "a\u3000b  c\u00a0d e  f"
    # what query.py writes (its hits' stored texts) and scores right away
    queries = [f"查询{i}" for i in range(len(titles))]
    result = tmp_path / "recall_result.txt"
    write_lines(str(result), [(q, t, "1.000000") for q, t in zip(queries, titles)])
    reported = recall_metrics(
        queries, {q: {t} for q, t in zip(queries, titles)}, {q: [t] for q, t in zip(queries, titles)}, 1
    )
    assert [doc for doc, _ in sum(read_recall_result(str(result)).values(), [])] == titles
    assert evaluate_file(str(gold), str(result), 1) == reported and reported["recall@1"] == pytest.approx(100.0)


# ------------------------------------------------------------------ 4, 7: provenance, model of a collection, the Python API


@pytest.fixture(scope="module")
def built(tiny_ernie, tmp_path_factory):
    """Two exported encoders A and B (B: A with one weight changed), A's embeddings of a 40-line corpus, and a Milvus
    Lite collection built from them with insert.py."""
    import paddle

    from ns_common.semantic import load_encoder
    from ns_common.semantic_tools import export_encoder
    from recall.milvus import feature_extract, insert

    root = tmp_path_factory.mktemp("probes")
    models = {}
    for name in ("A", "B"):
        paddle.seed(5)
        model, tokenizer = load_encoder(tiny_ernie, output_emb_size=EMB, pooling="mean")
        if name == "B":
            param = model.parameters()[-1]
            param.set_value(param.numpy() + 0.5)
        models[name] = str(root / name)
        export_encoder(model, tokenizer, models[name])
    corpus = root / "corpus.csv"
    titles = read_corpus(sample_file("milvus", "milvus_data.csv"))[:40]
    write_lines(str(corpus), titles)
    feature_extract.main(["--corpus_file", str(corpus), "--output_path", str(root / "emb"), "--model_dir", models["A"]])
    npy = str(root / "emb" / "corpus_embedding.npy")
    uri = str(root / "milvus.db")
    insert.main(["--data_path", str(corpus), "--embedding_path", npy, "--uri", uri])
    return {"root": root, "models": models, "corpus": str(corpus), "titles": titles, "npy": npy, "uri": uri}


def test_feature_extract_records_provenance_and_insert_refuses_a_shuffled_corpus(built, capsys):
    from recall.milvus import insert

    with open(os.path.join(os.path.dirname(built["npy"]), "corpus_embedding.json"), encoding="utf-8") as f:
        record = json.load(f)
    assert record["model"] == weights_fingerprint(built["models"]["A"]) and record["corpus"]["documents"] == 40
    shuffled = built["root"] / "shuffled.csv"
    titles = list(built["titles"])
    random.Random(3).shuffle(titles)
    write_lines(str(shuffled), titles)  # same line count: the row count check alone lets it through
    line = one_error(
        capsys,
        lambda: insert.main(
            ["--data_path", str(shuffled), "--embedding_path", built["npy"], "--uri", str(built["root"] / "other.db")]
        ),
    )
    assert "another corpus" in line and "feature_extract.py --corpus_file" in line


def test_a_collection_refuses_another_model_unless_allowed(built, capsys):
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher
    from search import query

    config = load_config(uri=built["uri"])
    with MilvusSearcher(config, TextEncoder(model_dir=built["models"]["A"])) as searcher:
        top = searcher.search(built["titles"][7], top_k=1)[0]
        assert top.id == 7 and top.score == pytest.approx(1.0, abs=1e-4)
        assert searcher.info.meta["model"] == weights_fingerprint(built["models"]["A"])
    with pytest.raises(ModelMismatchError, match=r"recall.milvus.insert \.\.\. --drop"):
        MilvusSearcher(config, TextEncoder(model_dir=built["models"]["B"]))
    with MilvusSearcher(config, TextEncoder(model_dir=built["models"]["B"]), allow_model_mismatch=True) as searcher:
        assert len(searcher.search(built["titles"][7], top_k=3)) == 3
    argv = [
        "--model_dir",
        built["models"]["B"],
        "--uri",
        built["uri"],
        "--mode",
        "dense",
        "--query",
        built["titles"][7],
        "--json",
    ]
    line = one_error(capsys, lambda: query.main(argv))
    assert "another model" in line and "--allow_model_mismatch" in line
    assert query.main(argv + ["--allow_model_mismatch"])


def test_the_python_api_raises_instead_of_exiting(built):
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher, SearchError

    with MilvusSearcher(load_config(uri=built["uri"])) as searcher:
        assert len(searcher.search(built["titles"][3], np.int64(3), mode="bm25")) == 3
        assert len(searcher.search_batch([built["titles"][3]], np.int32(2), mode="bm25")[0]) == 2
        for top_k in (5.5, True, 5.0, "3", None):
            with pytest.raises(SearchError, match="top_k"):
                searcher.search("语言", top_k, mode="bm25")
        for bad in (None, 123, b"\xe8\xaf\xad"):
            with pytest.raises(SearchError, match="not text"):
                searcher.search(bad, 3, mode="bm25")
            with pytest.raises(BadInputError):
                searcher.search_batch(["语言", bad], 3, mode="bm25")


# ------------------------------------------------------------------ 5: --max_seq_length above the model's positions


def test_max_seq_length_above_the_positions_is_a_config_error(built, tiny_ernie_gram, capsys):
    from ernie_matching.reranker import Reranker
    from recall.milvus import feature_extract
    from recall.milvus.model import TextEncoder

    with pytest.raises(ConfigError, match="max_position_embeddings"):
        TextEncoder(model_dir=built["models"]["A"], max_seq_length=129)
    with pytest.raises(ConfigError, match="128 positions"):
        Reranker(params_path=tiny_ernie_gram, max_seq_length=4096)
    line = one_error(
        capsys,
        lambda: feature_extract.main(
            [
                "--corpus_file",
                built["corpus"],
                "--output_path",
                str(built["root"] / "long"),
                "--model_dir",
                built["models"]["A"],
                "--max_seq_length",
                "600",
            ]
        ),
    )
    assert "--max_seq_length 600" in line
    assert TextEncoder(model_dir=built["models"]["A"], max_seq_length=128).max_seq_length == 128


# ------------------------------------------------------------------ 6: CSL JSON lines


def test_prepare_csl_skips_json_that_is_not_a_paper(tmp_path, caplog):
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
    import prepare_csl

    papers = [
        '"a string"',
        "5",
        "[1, 2]",
        "null",
        '{"title": null}',
        '{"title": 5}',
        '{"title": ["x"]}',
        '{"title": "标题一", "keywords": "神经网络_检索"}',
        '{"title": "标题二", "abstract": null, "keywords": ["甲", 3, "乙"]}',
        '{"title": "标题三", "keywords": 7}',
        '{"title": "标题四", "abstract": 12}',
    ]
    (tmp_path / "papers.jsonl").write_text("\n".join(papers) + "\n", encoding="utf-8")
    (tmp_path / "abstracts.jsonl").write_text(
        '{"abstract": null}\n{"abstract": "一段摘要", "keywords": "语言_文化"}\n"x"\n', encoding="utf-8"
    )
    read, extra = prepare_csl.read_csl_jsonl(str(tmp_path))
    assert [p["title"] for p in read] == ["标题一", "标题二"]
    assert read[0]["keywords"] == ["神经网络", "检索"]
    empty = {"id": "", "category": "", "discipline": ""}  # the record fields these papers do not have
    assert read[1] == {"title": "标题二", "abstract": "", "keywords": ["甲", "乙"], **empty}
    assert extra == [{"title": "", "abstract": "一段摘要", "keywords": ["语言", "文化"], **empty}]
    text = caplog.text
    assert (
        "not a JSON object (line 1, 2, 3, 4)" in text and "title is not text" in text and "keywords are neither" in text
    )


# ------------------------------------------------------------------ 8, 9, 10, 11


def test_rerank_results_checks_the_gold_pairs_before_writing(tmp_path, capsys, tiny_ernie_gram):
    from ernie_matching import rerank_results

    recall = tmp_path / "recall.txt"
    recall.write_text("语言\t语言学\t0.9\n", encoding="utf-8")
    gold = tmp_path / "gold.csv"
    gold.write_text("only one field\n\n", encoding="utf-8")
    out = tmp_path / "reranked.txt"
    line = one_error(
        capsys,
        lambda: rerank_results.main(
            [
                "--recall_result_file",
                str(recall),
                "--similar_text_pair_file",
                str(gold),
                "--output_file",
                str(out),
                "--params_path",
                tiny_ernie_gram,
            ]
        ),
    )
    assert "no valid query<TAB>doc pairs" in line and not out.exists()


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, capsys):
    import argparse

    from recall.milvus.config import add_config_args, load_config

    bad = tmp_path / "config.yml"
    bad.write_bytes("collection: 语言\n".encode("gbk"))
    args = add_config_args(argparse.ArgumentParser()).parse_args(["--config", str(bad)])
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(args)


def test_evaluate_on_an_empty_recall_file_is_an_error(tmp_path, capsys):
    from ns_common import evaluate

    empty = tmp_path / "recall.txt"
    empty.write_text("", encoding="utf-8")
    line = one_error(
        capsys,
        lambda: evaluate.main(
            ["--similar_text_pair_file", sample_file("recall", "dev.csv"), "--recall_result_file", str(empty)]
        ),
    )
    assert "nothing to evaluate" in line


def test_lines_with_nul_bytes_are_skipped_and_counted(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_bytes("查询\t标题\n坏\x00行\t标题\n查询二\t标题二\n".encode())
    counter = SkipCounter(str(path))
    assert list(read_fields(str(path), 2, counter=counter)) == [["查询", "标题"], ["查询二", "标题二"]]
    assert counter.skipped == {"lines with NUL bytes": [2]}
    corpus = tmp_path / "corpus.csv"
    corpus.write_bytes("一\n二\x00\n三\n".encode())
    assert read_corpus(str(corpus)) == ["一", "", "三"]  # ids keep their lines
