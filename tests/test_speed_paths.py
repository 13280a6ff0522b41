"""The fast inference path (oneDNN on by default) gives the dynamic graph's outputs, and the Milvus index
settings take effect (read back from the collection, and felt in the results).

Models are from-scratch `mini` ERNIE / ERNIE-Gram (vocabulary from the bundled sample), exported as the
stages export them; untrained weights are enough to compare two ways of running the same graph."""

import os

import numpy as np
import paddle
import pytest
from conftest import SAMPLE, make_tiny_model

from ns_common.errors import ConfigError
from ns_common.predictor import InferencePredictor, add_inference_args

CORPUS = os.path.join(SAMPLE, "milvus", "milvus_data.csv")
TOLERANCE = 1e-5  # max abs difference to the dynamic graph, fp32 (oneDNN measured ~2e-7 on these models)


def texts_of_every_shape():
    """Sample titles and queries of varied length, cut to 1..60 characters: many distinct input shapes."""
    if not os.path.isfile(CORPUS):
        pytest.skip(f"bundled sample missing: {CORPUS}")
    with open(CORPUS, encoding="utf-8") as f:
        titles = [line.strip() for line in f if line.strip()][:90]
    return [t[: 1 + i % 60] for i, t in enumerate(titles)]


def make_backbone(model_type, save_dir):
    """A from-scratch backbone of the `mini` preset's own sizes (not TINY), vocabulary from CORPUS."""
    with open(CORPUS, encoding="utf-8") as f:
        return make_tiny_model(save_dir, model_type, f.read().splitlines(), seed=11, sizes={})


@pytest.fixture(scope="module")
def recall_model(tmp_path_factory):
    """(backbone dir, checkpoint, exported dir) of a recall encoder with a 64-d projection."""
    from ns_common.checkpoint import save_encoder_config
    from ns_common.semantic import load_encoder
    from ns_common.semantic_tools import export_encoder

    texts_of_every_shape()
    root = tmp_path_factory.mktemp("recall_model")
    backbone = make_backbone("ernie", str(root / "backbone"))
    model, tokenizer = load_encoder(backbone, output_emb_size=64)
    params = str(root / "model_state.pdparams")
    paddle.save(model.state_dict(), params)
    save_encoder_config(model, str(root))
    export_encoder(model, tokenizer, str(root / "export"))
    return backbone, params, str(root / "export")


@pytest.fixture(scope="module")
def reranker_model(tmp_path_factory):
    """(checkpoint dir, exported dir) of an ERNIE-Gram reranker with exact-match token types."""
    from ernie_matching import export_model
    from ernie_matching.model import load_matching_model
    from ns_common.checkpoint import save_encoder_config

    texts_of_every_shape()
    root = tmp_path_factory.mktemp("reranker_model")
    backbone = make_backbone("ernie-gram", str(root / "ckpt"))  # the checkpoint dir holds its backbone config
    model, _ = load_matching_model(backbone, mark_matches=True)
    paddle.save(model.state_dict(), str(root / "ckpt" / "model_state.pdparams"))
    save_encoder_config(model, str(root / "ckpt"))
    export_model.main(["--params_path", str(root / "ckpt"), "--output_path", str(root / "export")])
    return str(root / "ckpt"), str(root / "export")


def test_fast_path_is_the_default_and_a_flag_turns_it_off(recall_model):
    import argparse

    parser = add_inference_args(argparse.ArgumentParser())
    assert parser.parse_args([]).enable_mkldnn is True and parser.parse_args([]).cpu_threads is None
    for off in (["--no-enable_mkldnn"], ["--enable_mkldnn", "false"]):
        assert parser.parse_args(off).enable_mkldnn is False
    assert parser.parse_args(["--enable_mkldnn"]).enable_mkldnn is True  # PaddleNLP's flag still works
    _, _, export_dir = recall_model
    assert "oneDNN fp32" in InferencePredictor(export_dir).settings
    assert "no oneDNN" in InferencePredictor(export_dir, enable_mkldnn=False).settings


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_exported_encoder_on_the_fast_path_equals_the_dynamic_graph(recall_model, batch_size):
    from recall.milvus.model import TextEncoder

    backbone, params, export_dir = recall_model
    texts = texts_of_every_shape()
    dynamic = TextEncoder(
        model_name_or_path=backbone, params_path=params, output_emb_size=64, batch_size=batch_size
    ).encode(texts)
    fast = TextEncoder(model_dir=export_dir, batch_size=batch_size)  # the default: oneDNN
    plain = TextEncoder(model_dir=export_dir, batch_size=batch_size, enable_mkldnn=False)
    assert fast.predictor.settings != plain.predictor.settings
    for encoder in (fast, plain):
        vectors = encoder.encode(texts)
        assert vectors.shape == (len(texts), 64)
        assert np.abs(vectors - dynamic).max() < TOLERANCE
    # single queries after batches (oneDNN caches kernels per input shape): still the same vectors
    for i in (0, 45, 89, 45):
        assert np.abs(fast.encode([texts[i]])[0] - dynamic[i]).max() < TOLERANCE
    assert np.abs(dynamic[:, None] - dynamic[None]).max() > 0.1  # the vectors depend on the text


def test_query_graph_leaves_layers_out_for_queries_alone(recall_model, tmp_path, capsys):
    """export_model.py --query_drop_layers 1 (the pretrained recipe's 3,7 at the smoke budget's size): TextEncoder
    sends queries through the encoder without its second layer (equal, within TOLERANCE, to the dynamic graph with
    that layer left out) and documents through the whole one; export_info.json records it; a layer the encoder
    lacks is refused before anything is written, and so is a query graph no export recorded in the directory;
    exporting again without the flag removes the query graph it wrote."""
    import json

    from ns_common.semantic import embed_texts, leave_out_layers, load_encoder
    from ns_common.semantic_tools import export_main
    from recall.milvus.model import TextEncoder

    backbone, params, _ = recall_model
    out = str(tmp_path / "export")
    flags = ["--model_name_or_path", backbone, "--params_path", params, "--output_path"]
    export_main([*flags, out, "--query_drop_layers", "1"])
    texts = texts_of_every_shape()[:40]
    model, tokenizer = load_encoder(backbone, params)
    whole_queries = embed_texts(model, tokenizer, texts, role="query")
    whole_docs = embed_texts(model, tokenizer, texts, role="doc")
    assert leave_out_layers(model, (1,)) == [0]
    cut_queries = embed_texts(model, tokenizer, texts, role="query")
    encoder = TextEncoder(model_dir=out)
    assert encoder.query_graph == os.path.join(out, "query")
    assert np.abs(encoder.encode(texts) - cut_queries).max() < TOLERANCE
    assert np.abs(encoder.encode(texts, role="doc") - whole_docs).max() < TOLERANCE
    assert np.abs(cut_queries - whole_queries).max() > 1e-2  # the layer is really out
    encoder.warm_up(8)
    assert np.abs(encoder.encode(texts[:1]) - cut_queries[:1]).max() < TOLERANCE
    with open(os.path.join(out, "export_info.json"), encoding="utf-8") as f:
        info = json.load(f)
    assert (info["query_drop_layers"], info["query_layers"], info["layers"]) == ([1], 1, 2)

    with pytest.raises(SystemExit) as refused:
        export_main([*flags, str(tmp_path / "bad"), "--query_drop_layers", "2"])
    assert refused.value.code == 2
    assert "--query_drop_layers 2: the encoder has layers 0-1" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / "bad")

    foreign = tmp_path / "foreign" / "query"  # a graph no export recorded there: refused, left as it is
    foreign.mkdir(parents=True)
    (foreign / "inference.json").write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit) as refused:
        export_main([*flags, str(tmp_path / "foreign")])
    assert refused.value.code == 2 and "no export here recorded" in capsys.readouterr().err
    assert (foreign / "inference.json").read_text(encoding="utf-8") == "{}"
    assert not (tmp_path / "foreign" / "inference.pdiparams").exists()

    export_main([*flags, out])
    assert TextEncoder(model_dir=out).query_graph is None
    assert not os.path.exists(os.path.join(out, "query", "inference.pdiparams"))
    assert np.abs(TextEncoder(model_dir=out).encode(texts) - whole_queries).max() < TOLERANCE


def test_warm_up_runs_every_query_length_and_changes_no_vector(recall_model):
    """TextEncoder.warm_up (what the web service and the latency benchmark run at start): one input of each length
    through the exported model, so that oneDNN builds those kernels before the first query; vectors unchanged."""
    from recall.milvus.model import TextEncoder

    backbone, params, export_dir = recall_model
    texts = texts_of_every_shape()[:12]
    fast = TextEncoder(model_dir=export_dir, max_seq_length=32)
    before = fast.encode(texts)
    assert fast.warm_up() == 30  # lengths 3..32
    assert fast.warm_up(longest=10) == 8
    assert np.array_equal(fast.encode(texts), before)
    dynamic = TextEncoder(model_name_or_path=backbone, params_path=params, output_emb_size=64)
    assert dynamic.warm_up() == 0  # the dynamic graph keeps no kernels per shape


def test_exports_hold_no_dropout_op_and_the_model_keeps_its_outputs(recall_model, reranker_model):
    """An eval-mode dropout is still exported as an op that copies its input and, on CPU, moves it out of oneDNN's
    layout and back: the export sets them to 0 (ns_common.export.without_inference_dropout). The fast path's outputs
    still equal the dynamic graph's (the test above); here: no dropout op left, and one model's eval outputs
    unchanged by the removal."""
    from ns_common.export import without_inference_dropout
    from ns_common.semantic import load_encoder
    from ns_common.text import batch_encode

    for export_dir in (recall_model[2], reranker_model[1]):
        with open(os.path.join(export_dir, "inference.json"), encoding="utf-8") as f:
            graph = f.read()
        assert "dropout" not in graph, f"{export_dir}: a dropout op was exported"
    backbone, params, _ = recall_model
    model, tokenizer = load_encoder(backbone, output_emb_size=64)
    model.set_state_dict(paddle.load(params))
    model.eval()
    ids, types = batch_encode(texts_of_every_shape()[:16], tokenizer, 64)
    before = model(paddle.to_tensor(ids), paddle.to_tensor(types)).numpy()
    assert without_inference_dropout(model) >= 3 * model.ptm.config.num_hidden_layers  # 3-4 per layer, + embeddings
    assert without_inference_dropout(model) == 0  # all gone
    after = model(paddle.to_tensor(ids), paddle.to_tensor(types)).numpy()
    assert np.array_equal(before, after)


def test_two_models_of_one_architecture_keep_their_own_onednn_kernels(recall_model, tmp_path):
    """oneDNN caches kernels (and reordered weights) per input shape: two predictors of the same graph with
    different weights (the web service holds a recall model and a reranker), queried in turn with the same
    shapes, from two threads, each still give their own model's vectors."""
    import threading

    from ns_common.semantic import embed_texts, load_encoder
    from ns_common.semantic_tools import export_encoder

    backbone, params, export_dir = recall_model
    first, tokenizer = load_encoder(backbone, params, 64)
    second, _ = load_encoder(backbone, params, 64)
    for weight in second.parameters():
        weight.set_value(weight * 0.8 + 0.01)
    export_encoder(second, tokenizer, str(tmp_path / "second"))
    pairs = [(InferencePredictor(export_dir), first), (InferencePredictor(str(tmp_path / "second")), second)]
    texts = texts_of_every_shape()[:12]
    worst = []

    def interleave():
        worst.append(
            max(
                np.abs(p.encode([t], tokenizer, 64, 1) - embed_texts(m, tokenizer, [t], 64, 1)).max()
                for t in texts
                for p, m in pairs
            )
        )

    interleave()
    thread = threading.Thread(target=interleave)
    thread.start()
    thread.join()
    assert max(worst) < TOLERANCE, worst
    assert (
        np.abs(pairs[0][0].encode(texts, tokenizer) - pairs[1][0].encode(texts, tokenizer)).max() > 0.01
    )  # they differ


def test_exported_reranker_on_the_fast_path_equals_the_dynamic_graph(reranker_model):
    from ernie_matching.reranker import Reranker

    ckpt, export_dir = reranker_model
    texts = texts_of_every_shape()
    queries, titles = [t[:8] for t in texts[::-1]], texts
    dynamic = Reranker(params_path=ckpt, batch_size=16).score_pairs(queries, titles)
    assert dynamic.std() > 1e-4  # the scores depend on the input
    for enable_mkldnn in (True, False):
        for batch_size in (1, 16, 64):
            reranker = Reranker(model_dir=export_dir, batch_size=batch_size, enable_mkldnn=enable_mkldnn)
            assert reranker.encoder.mark_matches
            assert np.abs(reranker.score_pairs(queries, titles) - dynamic).max() < TOLERANCE
    one = Reranker(model_dir=export_dir).score(queries[3], titles[:5])
    assert np.abs(one - Reranker(params_path=ckpt).score(queries[3], titles[:5])).max() < TOLERANCE


# ------------------------------------------------------------------ index settings


def unit_vectors(n, dim=64, seed=0):
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build_collection(tmp_path, vectors, **settings):
    from ns_common.records import Record
    from recall.milvus import store
    from recall.milvus.config import load_config

    config = load_config(uri=str(tmp_path / "settings.db"), collection="settings", bm25=False, **settings)
    client = store.connect(config)
    store.create_collection(client, config, vectors.shape[1], with_bm25=False)
    rows = [
        {"id": i, "text": f"doc {i}", "embedding": v.tolist(), **Record(f"doc {i}").fields()}
        for i, v in enumerate(vectors)
    ]
    client.insert(config.collection, rows)
    client.flush(config.collection)
    store.wait_for_index(client, config)
    return client, config


def recall_at_10(searcher, queries, exact):
    hits = searcher.search_vectors(queries, top_k=10)
    return float(np.mean([len({h.id for h in row} & set(e)) / 10 for row, e in zip(hits, exact)]))


def test_lite_builds_an_exact_index_and_refuses_hnsw(tmp_path, capsys):
    """On milvus-lite 2.5 (local mode) index_type AUTO builds FLAT: exact search, every query's true top 10; HNSW,
    which the engine cannot build, is a one-line error before any collection exists."""
    from recall.milvus import store
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    vectors, queries = unit_vectors(4000), unit_vectors(40, seed=1)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    client, config = build_collection(tmp_path, vectors)
    assert store.engine(client).local_mode
    assert client.describe_index(config.collection, index_name=store.DENSE_FIELD)["index_type"] == "FLAT"
    store.close(client, config)
    with MilvusSearcher(config) as searcher:
        assert searcher.info.index_type == "FLAT"
        assert recall_at_10(searcher, queries, exact) == 1.0

    hnsw = load_config(uri=str(tmp_path / "hnsw.db"), collection="hnsw", index_type="HNSW")
    client = store.connect(hnsw)
    with pytest.raises(ConfigError, match="builds FLAT or IVF_FLAT indexes only.*--index_type AUTO"):
        store.create_collection(client, hnsw, 8, with_bm25=False)
    assert not client.has_collection("hnsw")
    store.close(client, hnsw)


def test_ivf_settings_are_stored_on_lite(tmp_path):
    """nlist as given, or 4 sqrt(n) from the corpus size, read back from describe_index."""
    from recall.milvus import store
    from recall.milvus.config import load_config

    client, config = build_collection(tmp_path, unit_vectors(200), index_type="IVF_FLAT", ivf_nlist=8)
    assert store.stored_index_params(client.describe_index(config.collection, index_name=store.DENSE_FIELD)) == {
        "nlist": 8
    }
    store.close(client, config)
    sized = load_config(uri=str(tmp_path / "sized.db"), collection="sized", bm25=False, index_type="IVF_FLAT")
    client = store.connect(sized)
    info = store.create_collection(client, sized, 8, with_bm25=False, n_rows=10000)
    assert info.index_settings == {"nlist": 400}
    assert store.describe(client, sized).index_settings == {"nlist": 400}
    store.close(client, sized)


def test_bm25_k1_b_are_stored_and_take_effect_on_lite(tmp_path):
    """b = 0 turns BM25's length normalisation off: a short and a long title with the query once score alike;
    b = 1 ranks the short one higher. k1 / b read back from describe_index as set."""
    from recall.milvus import insert, store
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    corpus = tmp_path / "corpus.csv"
    corpus.write_text("语言文化\n语言文化 海洋生物实验方法研究进展综述与展望\n海洋生物\n实验方法\n", encoding="utf-8")
    scores = {}
    for k1, b in ((1.2, 0.0), (0.8, 1.0)):
        config = load_config(uri=str(tmp_path / f"bm25_{b}.db"), collection="bm25", bm25_k1=k1, bm25_b=b)
        client = store.connect(config)
        insert.insert_corpus(client, config, str(corpus), unit_vectors(4, dim=8))
        stored = store.stored_index_params(client.describe_index(config.collection, index_name=store.SPARSE_FIELD))
        assert stored == {"bm25_k1": k1, "bm25_b": b}
        store.close(client, config)
        with MilvusSearcher(config) as searcher:
            scores[b] = {hit.id: hit.score for hit in searcher.search("语言文化", top_k=4, mode="bm25")}
    assert set(scores[0.0]) == set(scores[1.0]) == {0, 1}
    assert scores[0.0][0] == pytest.approx(scores[0.0][1], rel=1e-4)
    assert scores[1.0][0] > 1.2 * scores[1.0][1]
