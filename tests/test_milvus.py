"""recall/milvus on embedded Milvus Lite: feature extraction (and its resume), insert (idempotent, resume,
dimension checks), dense / bm25 / hybrid search, Milvus (HNSW) recall against exact search, the query CLI
and its errors.

The model is a from-scratch mini ERNIE bootstrapped from the bundled sample and exported to Paddle
Inference exactly like a trained recall model; its rankings are arbitrary but deterministic, which is
enough to check that every path returns what the same model gives elsewhere.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import spread_embeddings

from ns_common.errors import ConfigError, ModelMismatchError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
CORPUS = os.path.join(SAMPLE, "milvus", "milvus_data.csv")
DEV = os.path.join(SAMPLE, "recall", "dev.csv")
EMB_SIZE = 32

pytestmark = pytest.mark.skipif(not os.path.isfile(CORPUS), reason=f"bundled sample missing: {CORPUS}")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Bootstrap mini ERNIE -> SemanticIndexBase(output_emb_size 32): exported dir (with tokenizer) + checkpoint.

    Its embeddings are spread out (conftest.spread_embeddings), so Milvus-versus-exact comparisons test the index,
    not float rounding."""
    import paddle

    from ns_common import bootstrap
    from ns_common.checkpoint import save_encoder_config
    from ns_common.semantic import load_encoder
    from ns_common.semantic_tools import export_encoder
    from ns_common.utils import quiet_paddlenlp, set_seed

    quiet_paddlenlp()
    root = tmp_path_factory.mktemp("milvus_model")
    bootstrap.main(
        [
            "--corpus_files",
            CORPUS,
            DEV,
            "--model_type",
            "ernie",
            "--preset",
            "mini",
            "--save_dir",
            str(root / "bootstrap"),
        ]
    )
    set_seed(1000)
    encoder, tokenizer = load_encoder(str(root / "bootstrap"), output_emb_size=EMB_SIZE)
    spread_embeddings(encoder, tokenizer, corpus_lines())
    paddle.save(encoder.state_dict(), str(root / "model_state.pdparams"))
    save_encoder_config(encoder, str(root))  # the pooling, for the dynamic-graph path
    export_encoder(encoder, tokenizer, str(root / "export"))
    return {
        "export": str(root / "export"),
        "backbone": str(root / "bootstrap"),
        "params": str(root / "model_state.pdparams"),
    }


@pytest.fixture(scope="module")
def embeddings(model, tmp_path_factory):
    """corpus_embedding.npy of the sample corpus, extracted in two runs (stopped by --max_chunks, then resumed)."""
    from recall.milvus import feature_extract

    out = tmp_path_factory.mktemp("features")
    argv = [
        "--model_dir",
        model["export"],
        "--corpus_file",
        CORPUS,
        "--output_path",
        str(out),
        "--chunk_size",
        "128",
        "--batch_size",
        "32",
    ]
    assert feature_extract.main(argv + ["--max_chunks", "2"]) is None  # interrupted on purpose
    parts = sorted(os.listdir(out / "corpus_embedding.parts"))
    assert parts == ["chunk_000000.npy", "chunk_000001.npy", "manifest.json"]
    assert not (out / "corpus_embedding.npy").exists()
    first_chunk = np.load(out / "corpus_embedding.parts" / "chunk_000000.npy")
    path = feature_extract.main(argv)  # resumes at chunk 2
    assert not (out / "corpus_embedding.parts").exists()
    vectors = np.load(path)
    np.testing.assert_array_equal(vectors[:128], first_chunk)  # finished chunks were kept, not redone
    return path


@pytest.fixture(scope="module")
def lite_index(embeddings, tmp_path_factory):
    """The sample corpus in a Milvus Lite collection (FLAT + BM25)."""
    from recall.milvus import insert

    uri = str(tmp_path_factory.mktemp("lite") / "milvus.db")
    assert insert.main(["--data_path", CORPUS, "--embedding_path", embeddings, "--uri", uri]) == 500
    return uri


def corpus_lines():
    with open(CORPUS, encoding="utf-8") as f:
        return [line.strip() for line in f]


def dev_pairs():
    with open(DEV, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


# ---------------------------------------------------------------- config


def test_config_flags_override_yaml(tmp_path):
    import argparse

    from recall.milvus.config import add_config_args, load_config

    defaults = load_config()
    assert (defaults.index_type, defaults.metric_type, defaults.uri.endswith(".db")) == ("AUTO", "IP", True)
    own = tmp_path / "my.yml"
    own.write_text("index_type: IVF_FLAT\nivf_nlist: 64\nuri: http://milvus.example:19530\n", encoding="utf-8")
    args = add_config_args(argparse.ArgumentParser()).parse_args(
        ["--config", str(own), "--search_nprobe", "8", "--bm25", "false"]
    )
    config = load_config(args)
    assert (config.index_type, config.ivf_nlist, config.bm25, config.is_lite) == ("IVF_FLAT", 64, False, False)
    assert config.search_params("IVF_FLAT", 10) == {"metric_type": "IP", "params": {"nprobe": 8}}
    assert load_config(search_ef=16).search_params("HNSW", 50)["params"] == {"ef": 50}  # ef >= top_k

    bad = tmp_path / "bad.yml"
    bad.write_text("index_typ: HNSW\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'index_typ'"):
        load_config(add_config_args(argparse.ArgumentParser()).parse_args(["--config", str(bad)]))
    with pytest.raises(ConfigError, match="--index_type IVF_PQ: expected one of"):
        load_config(index_type="IVF_PQ")


# ---------------------------------------------------------------- feature extraction


def test_extracted_embeddings_are_the_models(model, embeddings):
    """Row i of the .npy is the (dynamic-graph) model's embedding of corpus line i."""
    from recall.milvus.model import TextEncoder

    vectors = np.load(embeddings)
    assert vectors.shape == (500, EMB_SIZE) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert float((vectors @ vectors.T).mean()) < 0.5  # spread out (see the model fixture), not one direction
    dynamic = TextEncoder(model_name_or_path=model["backbone"], params_path=model["params"], output_emb_size=EMB_SIZE)
    rows = [0, 1, 250, 499]
    np.testing.assert_allclose(dynamic.encode([corpus_lines()[i] for i in rows]), vectors[rows], atol=1e-4)


@pytest.mark.slow
def test_feature_extract_under_distributed_launch(model, embeddings, tmp_path):
    """Two processes (paddle.distributed.launch, CPU) share the chunks; the joined .npy is the single-process one."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            str(tmp_path / "log"),
            "recall/milvus/feature_extract.py",
            "--model_dir",
            model["export"],
            "--corpus_file",
            CORPUS,
            "--output_path",
            str(tmp_path),
            "--chunk_size",
            "100",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    with open(tmp_path / "log" / "workerlog.1", encoding="utf-8") as f:
        assert "rank 1: embedded 2 chunks (200 docs" in f.read()  # chunks 1 and 3 of 0..4
    np.testing.assert_allclose(np.load(tmp_path / "corpus_embedding.npy"), np.load(embeddings), atol=1e-5)


def test_feature_extract_bad_input(model, tmp_path):
    from recall.milvus import feature_extract

    with pytest.raises(SystemExit):
        feature_extract.main(["--model_dir", model["export"], "--corpus_file", str(tmp_path / "missing.csv")])
    with pytest.raises(SystemExit):  # a model dir without tokenizer files and no --model_name_or_path
        os.makedirs(tmp_path / "bare")
        for name in ("inference.json", "inference.pdiparams"):
            os.symlink(os.path.join(model["export"], name), tmp_path / "bare" / name)
        feature_extract.main(
            ["--model_dir", str(tmp_path / "bare"), "--corpus_file", CORPUS, "--output_path", str(tmp_path)]
        )


# ---------------------------------------------------------------- insert


def test_insert_resume_is_exact_and_rerun_never_duplicates(embeddings, tmp_path):
    from recall.milvus import insert, store
    from recall.milvus.config import load_config

    uri = str(tmp_path / "resume.db")
    common = ["--data_path", CORPUS, "--embedding_path", embeddings, "--uri", uri, "--batch_size", "120"]
    assert insert.main(common + ["--max_batches", "2"]) is None  # stopped after 240 rows
    config = load_config(uri=uri)
    client = store.connect(config)
    assert store.count_entities(client, config) == 240
    store.close(client, config)
    assert insert.main(common + ["--resume"]) == 500
    assert insert.main(common) == 500  # a plain rerun upserts the same ids
    assert insert.main(common[:-1] + ["200", "--drop"]) == 500

    from recall.milvus.search import MilvusSearcher

    with MilvusSearcher(config) as searcher:
        texts = searcher.get_by_id([0, 239, 240, 499])
    lines = corpus_lines()
    assert texts == {0: lines[0], 239: lines[239], 240: lines[240], 499: lines[499]}


def test_write_requests_stay_under_the_vector_byte_cap_and_resume_by_them(embeddings, tmp_path, monkeypatch):
    """Milvus Lite 2.5 writes requests of more than ~6 MB of vectors several times slower: --batch_size is cut to
    store.MAX_REQUEST_VECTOR_BYTES of vectors (5,000 rows of 384 floats -> 2,730), and --max_batches / --resume
    count those requests."""
    import numpy as np

    from recall.milvus import insert, store
    from recall.milvus.config import load_config

    assert store.rows_per_request(load_config(batch_size=5000), 384) == 2730
    assert store.rows_per_request(load_config(batch_size=100), 384) == 100
    dim = np.load(embeddings, mmap_mode="r").shape[1]
    monkeypatch.setattr(store, "MAX_REQUEST_VECTOR_BYTES", 150 * 4 * dim)  # 150 rows a request
    uri = str(tmp_path / "capped.db")
    common = ["--data_path", CORPUS, "--embedding_path", embeddings, "--uri", uri, "--batch_size", "5000"]
    assert insert.main(common + ["--max_batches", "2"]) is None
    config = load_config(uri=uri)
    client = store.connect(config)
    assert store.count_entities(client, config) == 300  # two requests of 150, not the 500 of --batch_size
    store.close(client, config)
    assert insert.main(common + ["--resume"]) == 500


def test_insert_rejects_mismatches(embeddings, lite_index, tmp_path, capsys):
    from recall.milvus import insert

    other_dim = tmp_path / "other.npy"
    np.save(other_dim, np.ones((500, 8), dtype=np.float32))
    with pytest.raises(SystemExit):  # the collection holds 32-dim vectors
        insert.main(["--data_path", CORPUS, "--embedding_path", str(other_dim), "--uri", lite_index])
    assert "holds 32-dim vectors, the embeddings are 8-dim" in capsys.readouterr().err
    short_corpus = tmp_path / "short.csv"
    short_corpus.write_text("\n".join(corpus_lines()[:10]) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        insert.main(["--data_path", str(short_corpus), "--embedding_path", embeddings, "--uri", str(tmp_path / "x.db")])
    assert "has 10 lines but" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        insert.main(
            ["--data_path", CORPUS, "--embedding_path", embeddings, "--uri", str(tmp_path / "y.db"), "--dim", "64"]
        )
    assert "dim is set to 64" in capsys.readouterr().err
    shuffled = tmp_path / "shuffled.csv"  # the same lines in another order: ids would name other documents
    lines = corpus_lines()
    shuffled.write_text("\n".join(lines[1:] + lines[:1]) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit):  # feature_extract's record beside the .npy names the corpus it embedded
        insert.main(["--data_path", str(shuffled), "--embedding_path", embeddings, "--uri", lite_index])
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "embeds another corpus (500 documents" in err[0]
        and "feature_extract.py --corpus_file" in err[0]
    ), err
    bare = tmp_path / "bare.npy"  # without the record: the collection's own corpus sha1 refuses it
    bare.write_bytes(open(embeddings, "rb").read())
    with pytest.raises(SystemExit):
        insert.main(["--data_path", str(shuffled), "--embedding_path", str(bare), "--uri", lite_index])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "error:" in line]
    assert len(err) == 1 and "was built from another corpus (500 documents" in err[0] and "--drop" in err[0], err


# ---------------------------------------------------------------- search


def test_milvus_hnsw_recall_matches_exact_search(model, embeddings, lite_index, tmp_path):
    """The same model scores the same Recall@K through Milvus (HNSW) as through exact search."""
    from recall.milvus import compare_recall

    results = compare_recall.main(
        [
            "--model_dir",
            model["export"],
            "--embedding_path",
            embeddings,
            "--corpus_file",
            CORPUS,
            "--similar_text_pair_file",
            DEV,
            "--uri",
            lite_index,
            "--output_json",
            str(tmp_path / "r.json"),
        ]
    )
    assert set(results) == {"exact", "milvus-dense", "milvus-bm25", "milvus-hybrid"}
    for k in (1, 5, 10, 20, 50):
        assert abs(results["milvus-dense"][f"recall@{k}"] - results["exact"][f"recall@{k}"]) <= 1.0, (k, results)
    assert results["exact"]["queries"] == len({q for q, _ in dev_pairs()})
    assert json.loads((tmp_path / "r.json").read_text())["milvus-bm25"] == results["milvus-bm25"]


def test_bm25_hybrid_and_search_by_id(model, lite_index):
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher, SearchError

    corpus = corpus_lines()
    with MilvusSearcher(load_config(uri=lite_index), TextEncoder(model_dir=model["export"])) as searcher:
        assert searcher.modes == ("dense", "bm25", "hybrid")
        # a document's own title is its best BM25 match, and BM25 scores are positive and descending
        bm25 = searcher.search(corpus[42], top_k=5, mode="bm25")
        assert bm25[0].id == 42 and bm25[0].text == corpus[42]
        assert all(a.score >= b.score > 0 for a, b in zip(bm25, bm25[1:]))
        # hybrid fuses the routes: a hit first in both routes is first
        hybrid = searcher.search(corpus[42], top_k=5, mode="hybrid")
        assert len(hybrid) == 5 and hybrid[0].id == 42
        given = searcher.search_batch([corpus[42]], 5, "hybrid", vectors=searcher.encoder.encode([corpus[42]]))[0]
        assert [h.id for h in given] == [h.id for h in hybrid]  # precomputed query vectors: same result
        by_id = searcher.search_by_id(7, top_k=3)
        assert by_id[0].id == 7 and by_id[0].score == pytest.approx(1.0, abs=1e-3)
        with pytest.raises(SearchError, match="empty query"):
            searcher.search("   ", mode="dense")
        with pytest.raises(SearchError, match="no document with id"):
            searcher.search_by_id(10**6)
    bm25_only = load_config(uri=lite_index)
    with MilvusSearcher(bm25_only) as searcher:  # no model: bm25 works, dense says what is missing
        assert searcher.search(corpus[3], top_k=1, mode="bm25")[0].id == 3
        with pytest.raises(SearchError, match="needs a model"):
            searcher.search("语言", mode="dense")


# ---------------------------------------------------------------- query CLI


def test_query_cli_json_and_batch_recall_file(model, lite_index, tmp_path, capsys):
    from ns_common.evaluate import evaluate_file
    from search import query

    corpus = corpus_lines()
    common = ["--model_dir", model["export"], "--uri", lite_index]
    query.main(common + ["--query", corpus[5], "--top_k", "3", "--mode", "hybrid", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["mode"] == "hybrid" and [h["rank"] for h in printed["hits"]] == [1, 2, 3]
    assert printed["hits"][0]["id"] == 5 and printed["hits"][0]["text"] == corpus[5]

    result_file = str(tmp_path / "recall_result.txt")
    metrics = query.main(
        common + ["--query_file", DEV, "--mode", "bm25", "--recall_num", "20", "--recall_result_file", result_file]
    )
    with open(result_file, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    queries = {q for q, _ in dev_pairs()}
    assert {r[0] for r in rows} == queries and all(r[1] in corpus for r in rows)
    assert max(sum(r[0] == q for r in rows) for q in queries) == 20
    # the shared evaluate.py scores the file exactly as the CLI did
    assert evaluate_file(DEV, result_file, 20) == metrics
    assert metrics["recall@20"] > 50  # BM25 on keyword queries finds most gold titles even with this tiny corpus


def test_query_cli_errors(model, lite_index, tmp_path, capsys, caplog):
    from search import query

    with pytest.raises(SystemExit) as exit_info:
        query.main(["--model_dir", model["export"], "--uri", lite_index, "--query", "  "])
    assert exit_info.value.code == 2 and "--query is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        query.main(["--uri", str(tmp_path / "none.db"), "--query", "语言", "--mode", "bm25"])
    assert "no Milvus Lite database" in capsys.readouterr().err
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher

    with pytest.raises(ModelMismatchError, match="the model gives 128-dim vectors but collection literature_search"):
        MilvusSearcher(
            load_config(uri=lite_index), TextEncoder(model_name_or_path=model["backbone"])
        )  # no 32-dim projection
    long_query = "语言文化差异" * 30
    hits = query.main(
        [
            "--model_dir",
            model["export"],
            "--uri",
            lite_index,
            "--query",
            long_query,
            "--top_k",
            "2",
            "--max_seq_length",
            "16",
            "--mode",
            "dense",
        ]
    )
    assert len(hits) == 2 and "cut to the first 14" in caplog.text


def test_unreachable_server_is_one_line_error():
    """The real entry point, as a user runs it: nonzero exit and one line naming the URI."""
    result = subprocess.run(
        [sys.executable, "search/query.py", "--query", "语言", "--mode", "bm25", "--uri", "http://127.0.0.1:9"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "http://127.0.0.1:9" in errors[0] and "Traceback" not in result.stderr


# ---------------------------------------------------------------- the lexical leg and the search system


def test_lexical_leg_in_milvus_is_the_bm25_reference(lite_index):
    """BM25 on the client's character n-grams inside Milvus ranks exactly like bm25s on the same tokens (the
    keyword-search bar), with the k1/b the settings ask for stored in the index."""
    from ns_common.bm25 import BM25Index, joined_char_ngrams, lexical_text
    from recall.milvus import store
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    assert lexical_text("BP 神经") == "u62 u70 u795e u7ecf b62x70 b70x795e b795ex7ecf"
    config = load_config(uri=lite_index)
    queries = sorted({q for q, _ in dev_pairs()})
    indices, scores = BM25Index(corpus_lines(), joined_char_ngrams, k1=config.bm25_k1, b=config.bm25_b).search(
        queries, k=10
    )
    with MilvusSearcher(config) as searcher:
        assert searcher.info.analyzer == "char_ngram"
        stored = store.stored_index_params(searcher.client.describe_index(config.collection, "sparse"))
        assert stored == {"bm25_k1": config.bm25_k1, "bm25_b": config.bm25_b}
        hits = searcher.search_batch(queries, top_k=10, mode="bm25")
    for q, row, row_scores, found in zip(queries, indices, scores, hits):
        # the same documents with the same scores (equal scores may come in either order); Milvus' BM25 keeps
        # the (k1 + 1) factor of the textbook formula, bm25s (Lucene's variant) drops it
        reference = {int(i): float(v) * (config.bm25_k1 + 1) for i, v in zip(row, row_scores)}
        for hit in found[:5]:
            assert hit.score == pytest.approx(reference.get(hit.id, -1.0), rel=1e-4), (q, hit.id)


def test_a_collection_of_another_analyzer_must_be_rebuilt(embeddings, tmp_path, capsys):
    from recall.milvus import insert
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    uri = str(tmp_path / "jieba.db")
    assert (
        insert.main(["--data_path", CORPUS, "--embedding_path", embeddings, "--uri", uri, "--analyzer", "jieba"]) == 500
    )
    # the old way (jieba on the text) with today's settings: never silently worse
    with pytest.raises(ModelMismatchError, match="built with the jieba BM25 analyzer"):
        MilvusSearcher(load_config(uri=uri))
    with pytest.raises(SystemExit):
        insert.main(["--data_path", CORPUS, "--embedding_path", embeddings, "--uri", uri])
    assert "rebuild it with --drop" in capsys.readouterr().err
    with MilvusSearcher(load_config(uri=uri, analyzer="jieba")) as searcher:  # asked for explicitly: served
        assert searcher.search(corpus_lines()[3], top_k=1, mode="bm25")[0].id == 3


def test_a_search_over_unflushed_rows_fails_the_test(tmp_path):
    """The session's flush guard (tests/conftest.py) is live: a search right after an unflushed insert fails the
    test that runs it; after the flush it is served."""
    from ns_common.records import Record
    from recall.milvus import store
    from recall.milvus.config import load_config

    config = load_config(uri=str(tmp_path / "unflushed.db"), collection="unflushed", bm25=False)
    client = store.connect(config)
    store.create_collection(client, config, 4, with_bm25=False)
    row = {"id": 0, "text": "a", "embedding": [1.0, 0.0, 0.0, 0.0], **Record("a").fields()}
    client.insert(config.collection, [row])
    with pytest.raises(AssertionError, match="unflushed rows of collection unflushed"):
        client.search(config.collection, data=[[1.0, 0.0, 0.0, 0.0]], anns_field="embedding", limit=1)
    client.flush(config.collection)
    assert (
        client.search(config.collection, data=[[1.0, 0.0, 0.0, 0.0]], anns_field="embedding", limit=1)[0][0]["id"] == 0
    )
    store.close(client, config)


def test_a_database_of_the_other_engine_or_an_older_schema_must_be_rebuilt(embeddings, tmp_path, capsys):
    """A milvus-lite 3.x database (a directory, tests/data/lite3.db as an earlier version left it) and a collection
    of the schema before the description held its version are each refused in one line naming insert --drop,
    which rebuilds them."""
    import shutil

    from pymilvus import DataType, MilvusClient

    from recall.milvus import insert, store
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    old_engine = str(tmp_path / "old_engine.db")
    shutil.copytree(os.path.join(REPO, "tests", "data", "lite3.db"), old_engine)
    argv = ["--data_path", CORPUS, "--embedding_path", embeddings, "--uri", old_engine]
    with pytest.raises(ConfigError, match=r"written by milvus-lite 3\.x.*insert \.\.\. --drop"):  # the library raises
        MilvusSearcher(load_config(uri=old_engine))
    with pytest.raises(SystemExit):  # the command says it in one line
        insert.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "written by milvus-lite 3.x" in err[0] and "insert ... --drop" in err[0], err
    assert os.path.isdir(old_engine)  # refused, not touched
    assert insert.main(argv + ["--drop"]) == 500
    assert store.lite_generation(old_engine) == 2
    capsys.readouterr()

    old_schema = str(tmp_path / "old_schema.db")
    client = MilvusClient(old_schema)  # the collection as the project created it before the schema version
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=2048)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=EMB_SIZE)
    index = client.prepare_index_params()
    index.add_index(field_name="embedding", index_name="embedding", index_type="FLAT", metric_type="IP")
    client.create_collection("literature_search", schema=schema, index_params=index)
    client.close()
    store.close(client, load_config(uri=old_schema))
    argv = ["--data_path", CORPUS, "--embedding_path", embeddings, "--uri", old_schema]
    with pytest.raises(ModelMismatchError, match=r"schema version 1.*insert \.\.\. --drop"):
        MilvusSearcher(load_config(uri=old_schema))
    with pytest.raises(SystemExit):
        insert.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "schema version 1" in err[0] and "insert ... --drop" in err[0], err
    assert insert.main(argv + ["--drop"]) == 500
    with MilvusSearcher(load_config(uri=old_schema)) as searcher:
        assert searcher.info.meta["schema"] == store.SCHEMA_VERSION
        assert searcher.search(corpus_lines()[7], top_k=1, mode="bm25")[0].id == 7
