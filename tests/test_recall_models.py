"""simcse/ and inbatch_negative/: losses, training (1 and 2 processes), warm start, recall, evaluation,
hard-negative mining, export and Paddle Inference.

The tiny from-scratch ERNIE of conftest.py (hidden 32, one layer; vocabulary from the bundled sample); every
training run is a few steps on (a slice of) the sample."""

import json
import os

import numpy as np
import paddle
import pytest
from conftest import launch_two_processes, sample_file

from inbatch_negative import mine_hard_negatives, train_batch_neg
from inbatch_negative.model import SemanticIndexBatchNeg
from ns_common import evaluate as evaluate_cli
from ns_common import recall as recall_cli
from ns_common import semantic_tools
from ns_common.contrastive import false_negative_mask, in_batch_softmax_loss
from ns_common.errors import ModelMismatchError
from ns_common.evaluate import evaluate_file, recall_metrics
from ns_common.io import read_corpus, read_fields, read_recall_result, read_text_pairs, write_lines, write_recall_result
from ns_common.predictor import InferencePredictor
from ns_common.recall import exact_search, hnsw_search
from ns_common.semantic import embed_texts, load_encoder
from simcse import train as simcse_train

EMB = 16  # --output_emb_size of every model here


def sample(name):
    return sample_file("recall", name)


def train_args(tiny_ernie, save_dir, *extra):
    return [
        "--model_name_or_path",
        tiny_ernie,
        "--save_dir",
        str(save_dir),
        "--output_emb_size",
        str(EMB),
        "--max_seq_length",
        "32",
        "--logging_steps",
        "4",
        *extra,
    ]


@pytest.fixture(scope="module")
def simcse_run(tiny_ernie, tmp_path_factory):
    """SimCSE on 96 texts of the sample, 4 epochs of 6 batches."""
    root = tmp_path_factory.mktemp("simcse")
    texts = read_corpus(sample("train_unsupervised.csv"))[:96]
    train_file = str(root / "train_unsupervised.csv")
    write_lines(train_file, texts)
    summary = simcse_train.main(
        train_args(
            tiny_ernie,
            root / "ckpt",
            "--train_set_file",
            train_file,
            "--batch_size",
            "16",
            "--epochs",
            "4",
            "--learning_rate",
            "1e-3",
            "--pooling",
            "mean",
        )
    )
    return root / "ckpt", summary


# ------------------------------------------------------------------ the loss


def test_false_negative_mask_marks_duplicates_and_same_query():
    queries = ["q1", "q2", "q1", "q3"]
    positives = ["a", "b", "c", "a"]
    negatives = ["b", "z"]
    mask = false_negative_mask(queries, positives, negatives)
    assert mask.shape == (4, 6)
    assert not mask.diagonal().any()
    assert mask[0, 3] and mask[3, 0]  # the same doc "a" twice
    assert mask[0, 2] and mask[2, 0]  # the same query "q1": its other doc is a positive too
    assert mask[1, 4]  # mined negative "b" is row 1's positive
    assert not mask[0, 1] and not mask[0, 5]


def test_masked_column_gets_no_probability():
    paddle.seed(1)
    q = paddle.nn.functional.normalize(paddle.randn([3, 8]), axis=-1)
    d = paddle.nn.functional.normalize(paddle.randn([3, 8]), axis=-1)
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, 1] = True
    masked = float(in_batch_softmax_loss(q, d, 0.2, 30.0, paddle.to_tensor(mask)))
    # the same loss by hand, without column 1 for row 0
    logits = 30.0 * (q.numpy() @ d.numpy().T - 0.2 * np.eye(3))
    rows = [np.delete(logits[0], 1), logits[1], logits[2]]
    labels = [0, 1, 2]
    by_hand = np.mean([np.log(np.exp(r).sum()) - r[t] for r, t in zip(rows, labels)])
    assert masked == pytest.approx(by_hand, rel=1e-5)
    assert masked != pytest.approx(float(in_batch_softmax_loss(q, d, 0.2, 30.0)), rel=1e-5)


# ------------------------------------------------------------------ search, recall_result.txt, evaluation


def test_exact_search_matches_brute_force_and_hnsw_agrees():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(300, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[:20] + 0.05 * rng.normal(size=(20, 16)).astype(np.float32)
    indices, scores = exact_search(queries, docs, 10, chunk_size=7)  # several chunks
    brute = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    assert indices.shape == (20, 10) and scores.shape == (20, 10)
    np.testing.assert_array_equal(indices, brute)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert exact_search(queries, docs[:4], 10)[0].shape == (20, 4)  # k capped at the corpus size
    ann, _ = hnsw_search(queries, docs, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ann, brute)]) > 0.9


def write_handmade_case(tmp_path):
    """Three queries, the gold of the LAST one at rank 1 (PaddleNLP's evaluate.py would not count it)."""
    pairs = str(tmp_path / "dev.csv")
    write_lines(pairs, [("q1", "d1"), ("q2", "d2"), ("q3", "d3")])
    result = str(tmp_path / "recall_result.txt")
    write_lines(
        result,
        [
            ("q1", "x", 0.9),
            ("q1", "d1", 0.8),
            ("q1", "y", 0.1),
            ("q2", "x", 0.9),
            ("q2", "y", 0.8),
            ("q2", "z", 0.1),
            ("q3", "d3", 0.9),
            ("q3", "x", 0.8),
            ("q3", "y", 0.1),
        ],
    )
    return pairs, result


def test_evaluate_counts_every_query_including_the_last(tmp_path):
    pairs, result = write_handmade_case(tmp_path)
    metrics = evaluate_file(pairs, result, recall_num=3)
    assert metrics["queries"] == 3
    assert metrics["recall@1"] == pytest.approx(100 / 3)
    assert metrics["mrr@10"] == pytest.approx(100 * (0.5 + 0 + 1) / 3)
    assert "recall@5" not in metrics  # K above recall_num is not reported
    # a query missing from the results counts as a miss
    write_lines(result, [("q1", "d1", 0.9), ("q2", "d2", 0.9)])
    assert evaluate_file(pairs, result, recall_num=1)["recall@1"] == pytest.approx(200 / 3)


def test_evaluate_cli_appends_a_line_and_writes_json(tmp_path, capsys):
    pairs, result = write_handmade_case(tmp_path)
    table, js = str(tmp_path / "results.tsv"), str(tmp_path / "m.json")
    for _ in range(2):
        evaluate_cli.main(
            [
                "--similar_text_pair_file",
                pairs,
                "--recall_result_file",
                result,
                "--recall_num",
                "3",
                "--name",
                "hand",
                "--result_file",
                table,
                "--output_json",
                js,
            ]
        )
    lines = open(table, encoding="utf-8").read().splitlines()
    assert len(lines) == 2 and lines[0].startswith("hand\trecall@1=33.33")
    assert json.load(open(js))["recall@1"] == pytest.approx(100 / 3)
    assert "recall@1=33.33" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--similar_text_pair_file", pairs, "--recall_result_file", str(tmp_path / "missing.txt")])


def test_recall_metrics_multiple_gold_docs():
    metrics = recall_metrics(["q"], {"q": {"a", "b"}}, {"q": ["x", "b", "a"]}, recall_num=3)
    assert metrics["recall@1"] == 0 and metrics["mrr@10"] == pytest.approx(50.0)


def test_recall_result_round_trip(tmp_path):
    path = str(tmp_path / "r.txt")
    write_recall_result(
        path, ["q1", "q2"], ["d0", "d1", "d2"], np.array([[2, 0], [1, 2]]), np.array([[0.9, 0.5], [0.7, 0.6]])
    )
    assert read_recall_result(path) == {"q1": [("d2", 0.9), ("d0", 0.5)], "q2": [("d1", 0.7), ("d2", 0.6)]}


# ------------------------------------------------------------------ SimCSE and in-batch training


def test_word_repetition_keeps_the_text_and_special_tokens():
    import random

    from simcse.data import word_repetition

    ids = [1, 11, 12, 13, 14, 15, 16, 17, 2]
    rng = random.Random(0)
    longer = False
    for _ in range(50):
        out = word_repetition(ids, 0.32, rng, max_seq_length=64)
        assert out[0] == 1 and out[-1] == 2 and len(ids) <= len(out) <= len(ids) + 3
        # removing the repeats gives the text back
        assert [t for i, t in enumerate(out) if i == 0 or t != out[i - 1]] == ids
        longer |= len(out) > len(ids)
    assert longer
    assert len(word_repetition(ids, 1.0, rng, max_seq_length=10)) <= 10
    assert word_repetition(ids, 0.0, rng, 64) == ids


def test_keyword_view_is_a_few_words_of_the_text():
    import random

    from simcse.data import keyword_view

    rng = random.Random(0)
    title = "基于卷积神经网络的遥感图像目标检测方法研究"
    for _ in range(20):
        words = keyword_view(title, rng).split(" ")
        assert 2 <= len(words) <= 5 and len(set(words)) == len(words)
        assert all(w in title for w in words)
    assert keyword_view("短", rng) == "短"


def test_simcse_loss_falls_and_checkpoints_are_complete(simcse_run):
    ckpt, summary = simcse_run
    assert summary["steps"] == 24 and summary["world_size"] == 1
    assert summary["loss_last"] < summary["loss_first"] - 0.1
    for name in ("model_24", "model_final"):
        for f in ("model_state.pdparams", "vocab.txt", "tokenizer_config.json", "encoder_config.json"):
            assert os.path.isfile(ckpt / name / f), f"{name}/{f}"
    assert json.load(open(ckpt / "model_final" / "encoder_config.json")) == {
        "pooling": "mean",
        "output_emb_size": EMB,
        "embedding_dim": EMB,
    }
    on_disk = json.load(open(ckpt / "train_summary.json"))
    assert on_disk["steps"] == 24 and on_disk["wall_time_s"] > 0


@pytest.fixture(scope="module")
def hard_negatives(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("mined") / "hard_negatives.tsv")
    counts = mine_hard_negatives.main(
        [
            "--method",
            "bm25",
            "--train_set_file",
            sample("train.csv"),
            "--corpus_file",
            sample("corpus.csv"),
            "--output_file",
            path,
            "--top_k",
            "20",
            "--num_negatives",
            "2",
        ]
    )
    return path, counts


@pytest.fixture(scope="module")
def inbatch_run(tiny_ernie, simcse_run, hard_negatives, tmp_path_factory):
    """SimCSE -> in-batch (+ BM25 hard negatives), 3 epochs of 8 batches, evaluated after each epoch."""
    save_dir = tmp_path_factory.mktemp("inbatch") / "ckpt"
    simcse_ckpt, _ = simcse_run
    summary = train_batch_neg.main(
        train_args(
            tiny_ernie,
            save_dir,
            "--train_set_file",
            sample("train.csv"),
            "--init_from_ckpt",
            str(simcse_ckpt / "model_final"),
            "--hard_negative_file",
            hard_negatives[0],
            "--batch_size",
            "32",
            "--epochs",
            "3",
            "--learning_rate",
            "1e-3",
            "--evaluate",
            "--similar_text_pair_file",
            sample("dev.csv"),
            "--corpus_file",
            sample("corpus.csv"),
            "--recall_num",
            "20",
            "--recall_result_dir",
            str(save_dir / "recall"),
        )
    )
    return save_dir, summary


def test_bm25_mining_skips_gold(hard_negatives):
    path, counts = hard_negatives
    triples = list(read_fields(path, 3))
    assert counts["pairs"] == 240 and counts["with negatives"] > 200
    assert len(triples) <= 2 * counts["with negatives"]
    assert all(neg != pos for _, pos, neg in triples)
    gold = {}
    for q, d in read_text_pairs(sample("train.csv")):
        gold.setdefault(q, set()).add(d)
    assert all(neg not in gold[q] for q, _, neg in triples)


def test_mining_rule_on_a_handmade_ranking():
    corpus = ["gold", "above", "dup", "below1", "below2", "gold"]
    # query q ranks: above (0.9) > gold (0.8) = its duplicate (0.8) > below1 > below2
    rank = {"q": ([1, 0, 5, 3, 4], [0.9, 0.8, 0.8, 0.5, 0.4]), "r": ([1, 3], [0.9, 0.5])}
    triples, counts = mine_hard_negatives.mine(
        [("q", "gold"), ("r", "gold")], corpus, {"q": {"gold"}, "r": {"gold"}}, rank, 5, "hardest"
    )
    # r's gold was not retrieved: its negatives come from the top (ns_common/negatives.py)
    assert triples == [
        ("q", "gold", "below1"),
        ("q", "gold", "below2"),
        ("r", "gold", "above"),
        ("r", "gold", "below1"),
    ]
    assert counts["gold not retrieved"] == 1 and counts["with negatives"] == 2


def test_inbatch_trains_from_simcse_with_hard_negatives_and_keeps_the_best(inbatch_run):
    save_dir, summary = inbatch_run
    assert summary["steps"] == 24 and len(summary["evaluations"]) == 3
    assert summary["loss_last"] < summary["loss_first"]
    best = summary["best"]
    assert best["recall@5"] == max(e["recall@5"] for e in summary["evaluations"])
    info = json.load(open(save_dir / "model_best" / "checkpoint_info.json"))
    assert info["step"] == best["step"] and info["recall@5"] == pytest.approx(best["recall@5"])
    rows = open(save_dir / "recall" / "recall_result.txt", encoding="utf-8").read().splitlines()
    assert len(rows) == 60 * 20
    # the pooling came from the SimCSE checkpoint
    assert json.load(open(save_dir / "model_final" / "encoder_config.json"))["pooling"] == "mean"


def test_warm_start_loads_the_simcse_weights(tiny_ernie, simcse_run):
    simcse_ckpt, _ = simcse_run
    state = paddle.load(str(simcse_ckpt / "model_final" / "model_state.pdparams"))
    model, _ = load_encoder(
        tiny_ernie, str(simcse_ckpt / "model_final"), EMB, model_class=SemanticIndexBatchNeg, margin=0.2, scale=30
    )
    fresh, _ = load_encoder(tiny_ernie, None, EMB)
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key].numpy(), value.numpy(), err_msg=key)
    # and they are not what a fresh model starts with
    assert any(not np.array_equal(fresh.state_dict()[k].numpy(), v.numpy()) for k, v in state.items())


def test_warm_start_with_another_projection_size_fails_fast(tiny_ernie, simcse_run, tmp_path, capsys):
    simcse_ckpt, _ = simcse_run
    with pytest.raises(SystemExit):
        train_batch_neg.main(
            [
                "--model_name_or_path",
                tiny_ernie,
                "--train_set_file",
                sample("train.csv"),
                "--save_dir",
                str(tmp_path),
                "--init_from_ckpt",
                str(simcse_ckpt / "model_final"),
                "--output_emb_size",
                "8",
            ]
        )
    assert "--output_emb_size 16" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "model_final")


def test_bad_flags_fail_before_loading(tiny_ernie, tmp_path, capsys):
    with pytest.raises(SystemExit):
        simcse_train.main(["--model_name_or_path", tiny_ernie, "--train_set_file", str(tmp_path / "nope.csv")])
    assert "nope.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        simcse_train.main(
            [
                "--model_name_or_path",
                tiny_ernie,
                "--train_set_file",
                sample("train_unsupervised.csv"),
                "--dev_set_file",
                sample("dev.csv"),
            ]
        )
    assert "--corpus_file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_batch_neg.main(
            ["--model_name_or_path", tiny_ernie, "--train_set_file", sample("train.csv"), "--evaluate"]
        )
    assert "--similar_text_pair_file" in capsys.readouterr().err


# ------------------------------------------------------------------ recall, predict, export, deploy


def test_recall_cli_writes_recall_num_rows_a_query(tiny_ernie, inbatch_run, tmp_path):
    save_dir, _ = inbatch_run
    # no --output_emb_size, no --pooling: both come from the checkpoint
    path = recall_cli.main(
        [
            "--model_name_or_path",
            tiny_ernie,
            "--params_path",
            str(save_dir / "model_best" / "model_state.pdparams"),
            "--corpus_file",
            sample("corpus.csv"),
            "--similar_text_pair_file",
            sample("dev.csv"),
            "--recall_result_dir",
            str(tmp_path),
            "--recall_num",
            "10",
        ]
    )
    result = read_recall_result(path)
    queries = list(dict.fromkeys(q for q, _ in read_text_pairs(sample("dev.csv"))))
    corpus = set(read_corpus(sample("corpus.csv")))
    assert list(result) == queries
    for rows in result.values():
        assert len(rows) == 10
        assert all(doc in corpus for doc, _ in rows)
        scores = [s for _, s in rows]
        assert scores == sorted(scores, reverse=True) and -1.0001 <= scores[-1] <= scores[0] <= 1.0001
    # the model_best checkpoint scores what training measured at its step
    metrics = evaluate_file(sample("dev.csv"), path, recall_num=10)
    best = json.load(open(save_dir / "model_best" / "checkpoint_info.json"))
    assert metrics["recall@5"] == pytest.approx(best["recall@5"]) and metrics["recall@1"] == pytest.approx(
        best["recall@1"]
    )


def test_predict_scores_each_pair(tiny_ernie, inbatch_run, tmp_path):
    save_dir, _ = inbatch_run
    out = str(tmp_path / "sims.tsv")
    sims = semantic_tools.predict_main(
        [
            "--model_name_or_path",
            tiny_ernie,
            "--params_path",
            str(save_dir / "model_final"),
            "--output_emb_size",
            str(EMB),
            "--text_pair_file",
            sample("test.csv"),
            "--output_file",
            out,
        ]
    )
    rows = list(read_fields(out, 3))
    assert len(rows) == len(sims) == len(list(read_text_pairs(sample("test.csv"))))
    assert all(-1.0001 <= float(r[2]) <= 1.0001 for r in rows)


def test_exported_model_gives_the_dynamic_embeddings(tiny_ernie, inbatch_run, tmp_path, caplog):
    save_dir, _ = inbatch_run
    params = str(save_dir / "model_final" / "model_state.pdparams")
    out_dir = str(tmp_path / "exported")
    semantic_tools.export_main(
        [
            "--model_name_or_path",
            tiny_ernie,
            "--params_path",
            params,
            "--output_emb_size",
            str(EMB),
            "--output_path",
            out_dir,
        ]
    )
    for f in ("inference.json", "inference.pdiparams", "vocab.txt", "config.json", "export_info.json"):
        assert os.path.isfile(os.path.join(out_dir, f)), f
    texts = read_corpus(sample("corpus.csv"))[:50] + [q for q, _ in read_text_pairs(sample("dev.csv"))][:20]
    model, tokenizer = load_encoder(tiny_ernie, params, EMB)
    dynamic = embed_texts(model, tokenizer, texts, 32, 16)
    static = InferencePredictor(out_dir, "cpu", cpu_threads=1).encode(texts, tokenizer, 32, 16)
    assert static.shape == (len(texts), EMB)
    assert np.max(np.abs(static - dynamic)) < 1e-4
    np.testing.assert_allclose(np.linalg.norm(static, axis=1), 1.0, atol=1e-5)
    # the deploy script reports throughput and the difference itself
    texts_file = str(tmp_path / "texts.txt")
    write_lines(texts_file, texts)
    npy = str(tmp_path / "emb.npy")
    with caplog.at_level("INFO", logger="neural_search"):
        semantic_tools.deploy_main(
            [
                "--model_dir",
                out_dir,
                "--input_file",
                texts_file,
                "--output_file",
                npy,
                "--batch_size",
                "8",
                "--max_seq_length",
                "32",
                "--params_path",
                params,
                "--model_name_or_path",
                tiny_ernie,
                "--output_emb_size",
                str(EMB),
            ]
        )
    assert np.max(np.abs(np.load(npy) - dynamic)) < 1e-4
    assert "texts/s" in caplog.text and "(OK)" in caplog.text


# ------------------------------------------------------------------ reproducibility and 2 processes


def short_simcse(tiny_ernie, save_dir, seed):
    # word repetition on: its random draws must follow the seed too
    return simcse_train.main(
        train_args(
            tiny_ernie,
            save_dir,
            "--train_set_file",
            sample("train_unsupervised.csv"),
            "--batch_size",
            "16",
            "--max_steps",
            "3",
            "--seed",
            str(seed),
            "--dup_rate",
            "0.3",
        )
    )


def test_same_seed_same_embeddings(tiny_ernie, tmp_path):
    texts = read_corpus(sample("corpus.csv"))[:40]
    embeddings = []
    for run, seed in (("a", 5), ("b", 5), ("c", 6)):
        short_simcse(tiny_ernie, tmp_path / run, seed)
        model, tokenizer = load_encoder(tiny_ernie, str(tmp_path / run / "model_final"), EMB)
        embeddings.append(embed_texts(model, tokenizer, texts, 32))
    np.testing.assert_array_equal(embeddings[0], embeddings[1])
    assert np.max(np.abs(embeddings[0] - embeddings[2])) > 1e-6


@pytest.mark.slow
def test_two_process_cpu_training(tiny_ernie, hard_negatives, tmp_path):
    save_dir = tmp_path / "ckpt"
    args = train_args(
        tiny_ernie,
        save_dir,
        "--train_set_file",
        sample("train.csv"),
        "--hard_negative_file",
        hard_negatives[0],
        "--batch_size",
        "16",
        "--max_steps",
        "4",
        "--evaluate",
        "--similar_text_pair_file",
        sample("dev.csv"),
        "--corpus_file",
        sample("corpus.csv"),
        "--eval_steps",
        "2",
    )
    proc, logs = launch_two_processes("inbatch_negative/train_batch_neg.py", args, tmp_path / "logs")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs[-4000:]
    summary = json.load(open(save_dir / "train_summary.json"))
    assert summary["world_size"] == 2 and summary["steps"] == 4 and len(summary["evaluations"]) == 2
    assert os.path.isfile(save_dir / "model_final" / "model_state.pdparams")
    assert os.path.isfile(save_dir / "model_best" / "model_state.pdparams")


# ------------------------------------------------------------------ the encoder's pooling


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_embeddings_do_not_depend_on_padding(tiny_ernie, pooling):
    model, tokenizer = load_encoder(tiny_ernie, None, EMB, pooling=pooling)
    texts = ["基于深度学习的图像识别研究", "图像", "一种面向大规模数据的高效检索方法与系统实现"]
    together = embed_texts(model, tokenizer, texts, 32, batch_size=3)
    alone = np.concatenate([embed_texts(model, tokenizer, [t], 32) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_pooling_comes_from_the_checkpoint(tiny_ernie, tmp_path, capsys):
    from ns_common.checkpoint import save_checkpoint

    model, tokenizer = load_encoder(tiny_ernie, None, EMB)
    assert model.pooling == "mean"  # no checkpoint: the project's default
    save_checkpoint(load_encoder(tiny_ernie, None, EMB, pooling="cls")[0], tokenizer, str(tmp_path / "cls"))
    assert load_encoder(tiny_ernie, str(tmp_path / "cls"), EMB)[0].pooling == "cls"
    # a checkpoint without encoder_config.json is PaddleNLP's: [CLS] pooling
    os.remove(tmp_path / "cls" / "encoder_config.json")
    assert load_encoder(tiny_ernie, str(tmp_path / "cls" / "model_state.pdparams"), EMB)[0].pooling == "cls"
    save_checkpoint(model, tokenizer, str(tmp_path / "mean"))
    with pytest.raises(ModelMismatchError, match="mean pooling"):
        load_encoder(tiny_ernie, str(tmp_path / "mean"), EMB, pooling="cls")
