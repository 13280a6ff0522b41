"""PaddleNLP's entry points under their PaddleNLP names, each run as a command on tiny real models:

    simcse/inference.py, inbatch_negative/inference.py      dynamic-graph embeddings of a few texts
    <stage>/deploy/python/predict.py without --input_file   PaddleNLP's built-in examples, Paddle Inference
    ernie_matching/deploy/python/predict.py                 the exported reranker over query/title pairs
    recall/milvus/milvus_ann_search.py --insert / --search   Milvus Lite insert, neighbours of a stored document
    recall/milvus/embedding_recall.py                       search by one row of corpus_embedding.npy
    recall/milvus/inference.py                              embed a text with a checkpoint, search Milvus

The encoder is the tiny ERNIE of conftest (untrained, mean pooling, projection 16) with its projection's bias
centred on the sample corpus, so its embeddings spread out and each document is its own nearest neighbour
by a clear margin; the reranker is the tiny ERNIE-Gram, untrained.
"""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, sample_file, spread_embeddings

EMB = 16


def run(script, *args):
    """Runs a script of the repository; returns its stdout (the test fails with its stderr on an error)."""
    result = subprocess.run(
        [sys.executable, script, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def encoder(tiny_ernie, tmp_path_factory):
    """A recall encoder checkpoint (model_state.pdparams + encoder_config.json) and its Paddle Inference export."""
    import paddle

    from ns_common.semantic import load_encoder
    from ns_common.semantic_tools import export_encoder

    root = tmp_path_factory.mktemp("entry_encoder")
    paddle.seed(11)
    model, tokenizer = load_encoder(tiny_ernie, output_emb_size=EMB, pooling="mean")
    with open(sample_file("milvus", "milvus_data.csv"), encoding="utf-8") as f:
        corpus = f.read().splitlines()
    spread_embeddings(model, tokenizer, corpus)
    ckpt = root / "ckpt"
    ckpt.mkdir()
    paddle.save(model.state_dict(), str(ckpt / "model_state.pdparams"))
    (ckpt / "encoder_config.json").write_text(json.dumps(model.encoder_config()), encoding="utf-8")
    export_encoder(model, tokenizer, str(root / "export"))
    return {
        "backbone": tiny_ernie,
        "ckpt": str(ckpt),
        "export": str(root / "export"),
        "model": model,
        "tokenizer": tokenizer,
        "corpus": corpus,
    }


def test_stage_inference_prints_and_saves_the_checkpoints_embeddings(encoder, tmp_path):
    from ns_common.semantic import embed_texts

    common = ["--model_name_or_path", encoder["backbone"], "--params_path", encoder["ckpt"], "--max_seq_length", 64]
    # simcse: the built-in examples (PaddleNLP's title and two more)
    out = run("simcse/inference.py", *common, "--output_file", tmp_path / "simcse.npy")
    assert "embeddings shape: [3, 16]" in out and "pairwise cosine similarity:" in out
    assert "国有企业引入非国有资本对创新绩效的影响" in out
    simcse = np.load(tmp_path / "simcse.npy")
    assert simcse.shape == (3, EMB)
    np.testing.assert_allclose(np.linalg.norm(simcse, axis=1), 1.0, atol=1e-5)
    # in-batch negatives: --text then --input_file, in that order
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(encoder["corpus"][:4]) + "\n", encoding="utf-8")
    out = run(
        "inbatch_negative/inference.py",
        *common,
        "--text",
        "中西方语言与文化的差异",
        "--input_file",
        texts_file,
        "--batch_size",
        2,
        "--output_file",
        tmp_path / "inbatch.npy",
    )
    assert "embeddings shape: [5, 16]" in out
    texts = ["中西方语言与文化的差异"] + encoder["corpus"][:4]
    expected = embed_texts(encoder["model"], encoder["tokenizer"], texts, 64)
    np.testing.assert_allclose(np.load(tmp_path / "inbatch.npy"), expected, atol=1e-5)
    table = re.search(r"pairwise cosine similarity:\n(.*?)\n\[0\]", out, re.S).group(1)
    cosine = np.array([[float(x) for x in re.findall(r"-?\d+\.\d*", row)] for row in table.splitlines()])
    np.testing.assert_allclose(cosine, expected @ expected.T, atol=1e-5)


def test_deploy_predict_without_input_runs_paddlenlps_examples(encoder):
    from ns_common.semantic import embed_texts
    from ns_common.semantic_tools import DEPLOY_EXAMPLE_PAIRS

    out = run("inbatch_negative/deploy/python/predict.py", "--model_dir", encoder["export"], "--max_seq_length", 64)
    lines = out.splitlines()
    assert lines[0] == "[1, 16]"
    similarities = [float(line.rsplit("\t", 1)[1]) for line in lines if line.count("\t") == 2]
    a = embed_texts(encoder["model"], encoder["tokenizer"], [q for q, _ in DEPLOY_EXAMPLE_PAIRS], 64)
    b = embed_texts(encoder["model"], encoder["tokenizer"], [t for _, t in DEPLOY_EXAMPLE_PAIRS], 64)
    np.testing.assert_allclose(similarities, np.sum(a * b, axis=1), atol=1e-5)


def test_deploy_predict_scores_the_sample_pairs_with_the_exported_reranker(tiny_ernie_gram, tmp_path):
    import paddle

    from ernie_matching import export_model
    from ernie_matching.data import read_query_title_pairs
    from ernie_matching.model import load_matching_model
    from ernie_matching.reranker import Reranker

    paddle.seed(5)
    model, _ = load_matching_model(tiny_ernie_gram)
    ckpt = tmp_path / "reranker"
    ckpt.mkdir()
    paddle.save(model.state_dict(), str(ckpt / "model_state.pdparams"))
    export_model.main(
        ["--params_path", str(ckpt), "--model_name_or_path", tiny_ernie_gram, "--output_path", str(tmp_path / "export")]
    )
    pairs_file = sample_file("sort", "test_pairwise.csv")
    out = run(
        "ernie_matching/deploy/python/predict.py",
        "--model_dir",
        tmp_path / "export",
        "--input_file",
        pairs_file,
        "--batch_size",
        16,
        "--max_seq_length",
        64,
        "--device",
        "cpu",
        "--enable_mkldnn",
        "False",
        "--benchmark",
        "True",
        "--output_file",
        tmp_path / "probs.jsonl",
    )
    lines = [line for line in out.splitlines() if line.startswith("Data: ")]
    pairs = read_query_title_pairs(pairs_file)
    assert len(lines) == len(pairs) > 100
    probs = np.array([float(line.rsplit("prob: ", 1)[1]) for line in lines])
    assert ((probs >= 0) & (probs <= 1)).all() and probs.std() > 0
    assert f"'query': {pairs[0][0]!r}, 'title': {pairs[0][1]!r}" in lines[0]
    dynamic = Reranker(params_path=str(ckpt), model_name_or_path=tiny_ernie_gram, max_seq_length=64)
    np.testing.assert_allclose(probs, dynamic.score_pairs([q for q, _ in pairs], [t for _, t in pairs]), atol=1e-5)
    with open(tmp_path / "probs.jsonl", encoding="utf-8") as f:
        assert [round(json.loads(line)["pred_prob"], 6) for line in f] == pytest.approx(probs, abs=1e-6)


def hits(out):
    """(id, score, text) of PaddleNLP's `hit: (distance: D, id: N), text field: T` lines."""
    return [
        (int(m[2]), float(m[1]), m[3])
        for m in re.finditer(r"^hit: \(distance: (\S+), id: (\d+)\), text field: (.*)$", out, re.M)
    ]


def test_milvus_entry_points_insert_and_search_milvus_lite(encoder, tmp_path):
    from recall.milvus import feature_extract

    corpus_file = sample_file("milvus", "milvus_data.csv")
    embeddings = feature_extract.main(
        ["--model_dir", encoder["export"], "--corpus_file", corpus_file, "--output_path", str(tmp_path)]
    )
    uri = tmp_path / "milvus.db"
    out = run(
        "recall/milvus/milvus_ann_search.py",
        "--data_path",
        corpus_file,
        "--embedding_path",
        embeddings,
        "--batch_size",
        200,
        "--index",
        18,
        "--insert",
        "--search",
        "--top_k",
        5,
        "--uri",
        uri,
    )
    found = hits(out)
    assert len(found) == 5 and found[0][0] == 18 and found[0][1] == pytest.approx(1.0, abs=1e-4)
    assert found[0][2] == encoder["corpus"][18] and all(encoder["corpus"][i] == text for i, _, text in found)
    assert [s for _, s, _ in found] == sorted((s for _, s, _ in found), reverse=True) and found[1][1] < 0.999

    out = run(
        "recall/milvus/embedding_recall.py", "--embedding_path", embeddings, "--index", 1, "--top_k", 3, "--uri", uri
    )
    assert out.startswith(f"({len(encoder['corpus'])}, {EMB})") and "time cost" in out
    found = hits(out)
    assert len(found) == 3 and found[0][0] == 1 and found[0][1] == pytest.approx(1.0, abs=1e-4)

    query = encoder["corpus"][7]
    out = run(
        "recall/milvus/inference.py",
        "--model_name_or_path",
        encoder["backbone"],
        "--params_path",
        encoder["ckpt"],
        "--text",
        query,
        "--top_k",
        3,
        "--uri",
        uri,
    )
    assert "[1, 16]" in out.splitlines()
    results = out.split(f"query: {query}\n", 1)[1].splitlines()
    top = [line.split(" ") for line in results[:3]]
    assert len(top) == 3 and int(top[0][0]) == 7 and float(top[0][-1]) == pytest.approx(1.0, abs=1e-4)
