"""ernie_matching/: pair encoding, AUC, hard-negative mining, pairwise training, export, reranking.

The tiny from-scratch ERNIE-Gram of conftest.py (hidden 32, one layer) trained for a few steps on the bundled sample."""

import json
import os

import numpy as np
import paddle
import pytest
from conftest import launch_two_processes, sample_file

from ernie_matching import (
    evaluate,
    export_model,
    mine_pairwise,
    predict_pairwise,
    pseudo_pairs,
    rerank_results,
    train_pairwise,
)
from ernie_matching.data import PairEncoder, read_query_title_pairs
from ernie_matching.model import PairwiseMatching, load_matching_model
from ernie_matching.reranker import Reranker
from ns_common.errors import ModelMismatchError
from ns_common.evaluate import evaluate_file
from ns_common.io import read_pairwise_labeled, read_pairwise_train, read_text_pairs, write_lines
from ns_common.metrics import auc
from ns_common.modeling import load_tokenizer, new_backbone
from ns_common.text import convert_example


@pytest.fixture(scope="module")
def small_train_file(tmp_path_factory):
    """The first 96 triples of the sample: enough to see the loss fall in a few dozen steps."""
    path = str(tmp_path_factory.mktemp("sort") / "train_pairwise.csv")
    triples = list(read_pairwise_train(sample_file("sort", "train_pairwise.csv")))[:96]
    write_lines(path, triples, header=("query", "title", "neg_title"))
    return path


@pytest.fixture(scope="module")
def trained(tiny_ernie_gram, small_train_file, tmp_path_factory):
    save_dir = str(tmp_path_factory.mktemp("ernie_matching_ckpt"))
    train_pairwise.main([
        "--model_name_or_path", tiny_ernie_gram, "--train_file", small_train_file,
        "--test_file", sample_file("sort", "dev_pairwise.csv"), "--save_dir", save_dir, "--batch_size", "16",
        "--learning_rate", "3e-3", "--epochs", "8", "--eval_step", "24", "--max_seq_length", "48", "--seed", "5",
        "--dropout", "0.0", "--logging_steps", "4",
    ])  # fmt: skip
    return save_dir


def mean_pairwise_loss(model, tokenizer, triples, margin=0.1):
    encoder = PairEncoder(tokenizer, 48, mark_matches=model.mark_matches)
    model.eval()
    with paddle.no_grad():
        pos = model(
            *map(paddle.to_tensor, encoder.encode_batch([q for q, _, _ in triples], [t for _, t, _ in triples]))
        ).numpy()
        neg = model(
            *map(paddle.to_tensor, encoder.encode_batch([q for q, _, _ in triples], [n for _, _, n in triples]))
        ).numpy()
    return float(np.mean(np.maximum(0.0, margin - (pos - neg))))


# --- pair encoding -----------------------------------------------------------------------------------


def test_pair_encoder_equals_tokenizer_with_truncation_and_caches(tiny_ernie_gram):
    tokenizer = load_tokenizer(tiny_ernie_gram)
    pairs = list(read_text_pairs(sample_file("recall", "dev.csv")))[:20]
    pairs.append(("CNN LSTM 图像识别", "基于BERT与CNN的PM2.5浓度预测研究" * 5))  # longer than max_seq_length
    for max_len in (64, 16):
        encoder = PairEncoder(tokenizer, max_len)
        for query, title in pairs:
            assert encoder.encode(query, title) == tuple(convert_example(query, tokenizer, max_len, title))
            assert len(encoder.encode(query, title)[0]) <= max_len
    assert encoder.hits > 0 and encoder.misses == len({t for pair in pairs for t in pair})
    small = PairEncoder(tokenizer, 32, cache_size=3)
    for query, title in pairs[:5]:
        small.encode(query, title)
    assert len(small.cache) == 3


def test_exact_match_marks_the_tokens_found_on_the_other_side(tiny_ernie_gram):
    tokenizer = load_tokenizer(tiny_ernie_gram)
    query, title = "图像 识别", "基于深度学习的图像分类"
    plain = PairEncoder(tokenizer, 64).encode(query, title)
    input_ids, types = PairEncoder(tokenizer, 64, mark_matches=True).encode(query, title)
    assert input_ids == plain[0]
    tokens = tokenizer.convert_ids_to_tokens(input_ids)
    sep = tokens.index("[SEP]")
    expected = (
        [0]
        + [3 if t in "图像" else 0 for t in tokens[1:sep]]
        + [0]
        + [2 if t in "图像" else 1 for t in tokens[sep + 1 : -1]]
        + [1]
    )
    assert types == expected
    assert types.count(2) == 2 and types.count(3) == 2  # 图 and 像 on each side; 识别 is not in the title
    # nothing in common: the plain token types
    assert PairEncoder(tokenizer, 64, mark_matches=True).encode("天气", "基于深度学习的图像分类") == PairEncoder(
        tokenizer, 64
    ).encode("天气", "基于深度学习的图像分类")


def test_match_token_types_start_as_the_plain_ones(tiny_ernie_gram):
    """The two new token-type rows are copies: before training, a marked pair scores as the plain pair."""
    plain, tokenizer = load_matching_model(tiny_ernie_gram, dropout=0.0)
    marked, _ = load_matching_model(tiny_ernie_gram, dropout=0.0, mark_matches=True)
    marked.similarity.set_state_dict(plain.similarity.state_dict())
    assert marked.ptm.embeddings.token_type_embeddings.weight.shape[0] == 4
    plain.eval(), marked.eval()
    rows = list(read_pairwise_labeled(sample_file("sort", "dev_pairwise.csv")))[:16]
    queries, titles = [q for q, _, _ in rows], [t for _, t, _ in rows]
    with paddle.no_grad():
        p = plain(*map(paddle.to_tensor, PairEncoder(tokenizer, 48).encode_batch(queries, titles))).numpy()
        m = marked(
            *map(paddle.to_tensor, PairEncoder(tokenizer, 48, mark_matches=True).encode_batch(queries, titles))
        ).numpy()
    assert np.abs(p - m).max() < 1e-5 and p.std() > 0


# --- AUC -----------------------------------------------------------------------------------------------


def auc_by_counting(labels, scores):
    """P(score of a random positive > score of a random negative), ties counted half."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_equals_the_direct_pairwise_formula():
    labels = [1, 0, 1, 0, 0, 1, 0, 1]
    scores = [0.9, 0.8, 0.3, 0.3, 0.1, 0.7, 0.75, 0.3]  # ties across and within classes
    assert auc(labels, scores) == pytest.approx(auc_by_counting(labels, scores))
    # by hand, positives 0.9, 0.3, 0.7, 0.3 against negatives 0.8, 0.3, 0.1, 0.75: 4 + 1.5 + 2 + 1.5 wins of 16
    assert auc(labels, scores) == pytest.approx(9 / 16)
    assert auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, 300), rng.integers(0, 20, 300) / 20  # many ties
    assert auc(labels, scores) == pytest.approx(auc_by_counting(labels, scores))


# --- mining --------------------------------------------------------------------------------------------


@pytest.fixture()
def hand_made_recall(tmp_path):
    """Three labelled queries: gold at rank 3, gold at rank 1 (with a spaced copy of it at rank 2), gold not
    recalled; a fourth labelled query has no recall result at all."""
    recall = {
        "q1": ["a1", "a2", "GOLD1", "b1", "b2", "b3"],
        "q2": ["GOLD2", "GOLD 2", "c1", "c2", "c3"],
        "q3": ["d1", "d2", "d3"],
    }
    rows = [(q, doc, f"{1.0 - 0.1 * i:.2f}") for q, docs in recall.items() for i, doc in enumerate(docs)]
    write_lines(tmp_path / "recall_result.txt", rows)
    write_lines(tmp_path / "pairs.csv", [("q1", "GOLD1"), ("q2", "GOLD2"), ("q3", "GOLD3"), ("q4", "GOLD4")])
    return str(tmp_path / "recall_result.txt"), str(tmp_path / "pairs.csv")


def test_mining_takes_negatives_below_the_gold_never_the_gold_or_its_copies(hand_made_recall, tmp_path, caplog):
    recall_file, pairs_file = hand_made_recall
    out = tmp_path / "train_pairwise.csv"
    mine_pairwise.main(
        [
            "--recall_result_file",
            recall_file,
            "--pairs_file",
            pairs_file,
            "--output_train_file",
            str(out),
            "--neg_per_query",
            "2",
            "--neg_pool",
            "3",
        ]
    )
    triples = list(read_pairwise_train(str(out)))
    by_query = {}
    for query, title, neg in triples:
        by_query.setdefault(query, []).append((title, neg))
    assert set(by_query) == {"q1", "q2", "q3"}  # q4 has no recall result: skipped
    assert "1 of 4 queries have no recall result" in caplog.text
    assert {t for q in by_query for t, _ in by_query[q]} == {"GOLD1", "GOLD2", "GOLD3"}
    assert {n for _, n in by_query["q1"]} <= {"b1", "b2", "b3"} and len(by_query["q1"]) == 2  # not a1/a2 above the gold
    assert {n for _, n in by_query["q2"]} <= {"c1", "c2", "c3"}  # "GOLD 2" is the gold with a space: skipped
    assert {n for _, n in by_query["q3"]} <= {"d1", "d2", "d3"}  # gold not recalled: from the top
    # 'all' also takes the titles the recall ranked above the gold
    out_all = tmp_path / "all.csv"
    mine_pairwise.main(
        [
            "--recall_result_file",
            recall_file,
            "--pairs_file",
            pairs_file,
            "--output_train_file",
            str(out_all),
            "--neg_per_query",
            "5",
            "--neg_pool",
            "5",
            "--negative_ranks",
            "all",
        ]
    )
    q1_negs = {n for q, _, n in read_pairwise_train(str(out_all)) if q == "q1"}
    assert q1_negs == {"a1", "a2", "b1", "b2", "b3"}


def test_mining_splits_queries_between_train_and_labelled_files(hand_made_recall, tmp_path):
    recall_file, pairs_file = hand_made_recall
    train_out, labeled_out = tmp_path / "train.csv", tmp_path / "dev.csv"
    args = ["--recall_result_file", recall_file, "--pairs_file", pairs_file, "--neg_per_query", "2", "--neg_pool", "2"]
    mine_pairwise.main(
        [
            *args,
            "--output_train_file",
            str(train_out),
            "--output_labeled_file",
            str(labeled_out),
            "--labeled_ratio",
            "0.34",
        ]
    )
    train_queries = {q for q, _, _ in read_pairwise_train(str(train_out))}
    labeled = list(read_pairwise_labeled(str(labeled_out)))
    labeled_queries = {q for q, _, _ in labeled}
    assert len(labeled_queries) == 1 and len(train_queries) == 2 and not train_queries & labeled_queries
    assert [label for _, _, label in labeled] == [1, 0, 0]
    # a labelled file only: every query, gold first then its negatives
    mine_pairwise.main([*args, "--output_labeled_file", str(labeled_out)])
    labeled = list(read_pairwise_labeled(str(labeled_out)))
    assert sum(label for _, _, label in labeled) == 3 and len(labeled) == 9


def test_mining_flag_errors_are_one_line(hand_made_recall, tmp_path, capsys):
    recall_file, pairs_file = hand_made_recall
    with pytest.raises(SystemExit) as e:
        mine_pairwise.main(["--recall_result_file", recall_file, "--pairs_file", pairs_file])
    assert e.value.code == 2 and "--output_train_file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mine_pairwise.main(
            ["--recall_result_file", str(tmp_path / "nope.txt"), "--pairs_file", pairs_file, "--output_train_file", "x"]
        )
    assert "nope.txt" in capsys.readouterr().err


def test_pseudo_pairs_query_words_come_from_the_title_and_negatives_differ(tmp_path):
    out = str(tmp_path / "pseudo.csv")
    args = [
        "--corpus_file",
        sample_file("recall", "corpus.csv"),
        "--output_file",
        out,
        "--random_negatives",
        "1",
        "--bm25_negatives",
        "2",
        "--max_titles",
        "60",
        "--seed",
        "3",
    ]
    pseudo_pairs.main(args)
    triples = list(read_pairwise_train(out))
    queries = {q for q, _, _ in triples}
    assert len(triples) == 3 * len(queries) and len(queries) >= 50
    for query, title, neg in triples:
        assert all(word in title for word in query.split()) and 1 <= len(query.split()) <= 4
        assert "".join(neg.split()) != "".join(title.split())
    again = str(tmp_path / "again.csv")
    pseudo_pairs.main([*args[:3], again, *args[4:]])
    assert open(out, encoding="utf-8").read() == open(again, encoding="utf-8").read()  # seeded


# --- training ------------------------------------------------------------------------------------------


def test_pairwise_losses_on_hand_made_logits(tiny_ernie_gram):
    backbone = load_matching_model(tiny_ernie_gram)[0].ptm
    pos, neg = paddle.to_tensor([2.0, 0.0, -1.0]), paddle.to_tensor([0.0, 0.0, 1.0])
    sigmoid = lambda x: 1 / (1 + np.exp(-np.array(x)))  # noqa: E731
    margin_expected = np.mean(np.maximum(0.0, 0.1 - (sigmoid([2.0, 0.0, -1.0]) - sigmoid([0.0, 0.0, 1.0]))))
    margin_loss = PairwiseMatching(backbone, margin=0.1, loss="margin").pairwise_loss(pos, neg)
    assert float(margin_loss) == pytest.approx(margin_expected, rel=1e-5)
    logistic_loss = PairwiseMatching(backbone, loss="logistic").pairwise_loss(pos, neg)
    assert float(logistic_loss) == pytest.approx(np.mean(np.log1p(np.exp([-2.0, 0.0, 2.0]))), rel=1e-5)
    # a pair ranked right by more than LOGISTIC_GAP_CAP logits gets no gradient; the others do
    pos = paddle.to_tensor([30.0, 1.0], stop_gradient=False)
    PairwiseMatching(backbone, loss="logistic").pairwise_loss(pos, paddle.to_tensor([0.0, 0.0])).backward()
    assert pos.grad.numpy()[0] == 0.0 and pos.grad.numpy()[1] < -0.1


def test_training_lowers_the_pairwise_loss_and_keeps_the_best_auc(trained, tiny_ernie_gram, small_train_file):
    triples = list(read_pairwise_train(small_train_file))
    before, tokenizer = load_matching_model(tiny_ernie_gram)
    after, _ = load_matching_model(params_path=os.path.join(trained, "model_final"))  # self-describing checkpoint
    loss_before, loss_after = (
        mean_pairwise_loss(before, tokenizer, triples),
        mean_pairwise_loss(after, tokenizer, triples),
    )
    assert loss_after < 0.5 * loss_before, (loss_before, loss_after)
    with open(os.path.join(trained, "train_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["steps"] == 48 and summary["loss_last"] < summary["loss_first"]
    best = summary["best"]
    assert best["auc"] == max(e["auc"] for e in summary["evaluations"])
    for name in ("model_best", "model_final"):
        assert {"model_state.pdparams", "vocab.txt", "config.json"} <= set(os.listdir(os.path.join(trained, name)))
        # exact-match token types are the default, recorded with the checkpoint and rebuilt on loading
        assert json.load(open(os.path.join(trained, name, "encoder_config.json"))) == {"mark_matches": True}
    assert after.mark_matches and after.ptm.embeddings.token_type_embeddings.weight.shape[0] == 4


def test_training_flag_errors_fail_before_loading_a_model(tiny_ernie_gram, small_train_file, tmp_path, capsys):
    base = [
        "--model_name_or_path",
        tiny_ernie_gram,
        "--train_file",
        small_train_file,
        "--test_file",
        sample_file("sort", "dev_pairwise.csv"),
    ]
    with pytest.raises(SystemExit):
        train_pairwise.main([*base, "--margin", "1.5"])
    assert "--margin" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_pairwise.main([*base[:2], "--train_file", str(tmp_path / "missing.csv"), "--test_file", base[-1]])
    assert "missing.csv" in capsys.readouterr().err


def test_checkpoint_of_another_size_is_a_clear_error(trained, tmp_path, capsys):
    other = str(tmp_path / "other")
    os.makedirs(other)
    tokenizer_dir = os.path.join(trained, "model_final")
    new_backbone(
        "ernie-gram",
        100,
        "mini",
        max_position_embeddings=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    ).save_pretrained(other)
    load_tokenizer(tokenizer_dir).save_pretrained(other)
    with pytest.raises(ModelMismatchError, match="does not fit the model"):
        load_matching_model(other, os.path.join(trained, "model_final"))


@pytest.mark.slow
def test_two_process_cpu_training(tiny_ernie_gram, small_train_file, tmp_path):
    # two training files are mixed; the logistic loss runs through DataParallel too
    args = [
        "--model_name_or_path",
        tiny_ernie_gram,
        "--train_file",
        small_train_file,
        sample_file("sort", "train_pairwise.csv"),
        "--test_file",
        sample_file("sort", "dev_pairwise.csv"),
        "--loss",
        "logistic",
        "--save_dir",
        str(tmp_path / "ckpt"),
        "--batch_size",
        "8",
        "--max_steps",
        "3",
        "--eval_step",
        "3",
        "--max_seq_length",
        "32",
    ]
    result, logs = launch_two_processes("ernie_matching/train_pairwise.py", args, tmp_path / "logs")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + logs[-3000:]
    with open(tmp_path / "ckpt" / "train_summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert "1056 training triples" in logs  # 96 + 960
    assert "trained 3 steps" in logs  # the last line before the processes leave without teardown: flushed
    assert os.path.isfile(tmp_path / "ckpt" / "model_best" / "model_state.pdparams")


# --- evaluate, predict, export -------------------------------------------------------------------------


def test_evaluate_reports_the_auc_of_the_model_scores(trained, capsys):
    ckpt = os.path.join(trained, "model_best")
    test_file = sample_file("sort", "test_pairwise.csv")
    value = evaluate.main(["--test_file", test_file, "--params_path", ckpt])
    out = capsys.readouterr().out
    rows = list(read_pairwise_labeled(test_file))
    n_pos = sum(label for _, _, label in rows)
    assert f"{n_pos} positive, {len(rows) - n_pos} negative pairs" in out and f"auc: {value:.4f}" in out
    scores = Reranker(params_path=ckpt, max_seq_length=64).score_pairs([q for q, _, _ in rows], [t for _, t, _ in rows])
    assert value == pytest.approx(auc_by_counting([y for _, _, y in rows], scores.tolist()))


def test_exported_model_gives_the_dynamic_probabilities(trained, tmp_path, capsys):
    ckpt = os.path.join(trained, "model_best")
    export_dir = str(tmp_path / "exported")
    export_model.main(["--params_path", ckpt, "--output_path", export_dir])
    rows = list(read_pairwise_labeled(sample_file("sort", "test_pairwise.csv")))
    queries, titles = [q for q, _, _ in rows], [t for _, t, _ in rows]
    dynamic = Reranker(params_path=ckpt, batch_size=32).score_pairs(queries, titles)
    exported = Reranker(model_dir=export_dir, batch_size=32)
    assert exported.encoder.mark_matches  # read from the export's encoder_config.json
    static = exported.score_pairs(queries, titles)
    assert static.shape == (len(rows),) and np.abs(static - dynamic).max() < 1e-5
    assert dynamic.std() > 1e-4  # the outputs depend on the input (a constant model would pass trivially)
    assert exported.pairs_per_s > 0
    # predict_pairwise.py: one JSON object a line, same probabilities
    out_file = str(tmp_path / "pred.jsonl")
    predict_pairwise.main(
        ["--model_dir", export_dir, "--input_file", sample_file("sort", "test_pairwise.csv"), "--output_file", out_file]
    )
    with open(out_file, encoding="utf-8") as f:
        predictions = [json.loads(line) for line in f]
    assert [(p["query"], p["title"]) for p in predictions] == list(zip(queries, titles))
    assert np.allclose([p["pred_prob"] for p in predictions], static, atol=1e-5)


def test_query_title_reader_takes_headers_and_extra_fields(tmp_path, caplog):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"query\ttitle\tlabel\nq1\tt1\t1\nq2\tt2\t0.5\nbroken line\n\tno query\nq3\tt3\n")
    assert read_query_title_pairs(str(path)) == [("q1", "t1"), ("q2", "t2"), ("q3", "t3")]
    assert "skipped 2" in caplog.text


# --- reranking -----------------------------------------------------------------------------------------


def test_rerank_orders_candidates_by_their_scores_and_keeps_both(trained):
    reranker = Reranker(params_path=os.path.join(trained, "model_best"), batch_size=4)
    query = "重金属污染 主成分分析 生态风险评价"
    titles = [t for _, t in read_text_pairs(sample_file("recall", "dev.csv"))][:10]
    candidates = [{"id": 100 + i, "text": t, "score": 1.0 - i / 10} for i, t in enumerate(titles)]
    scores = reranker.score(query, titles)
    top = reranker.rerank(query, candidates, top_k=5)
    assert [c["id"] for c in top] == [100 + i for i in np.argsort(-scores, kind="stable")[:5]]
    for c in top:
        i = c["id"] - 100
        assert c["rerank_score"] == pytest.approx(float(scores[i])) and c["score"] == candidates[i]["score"]
        assert c["recall_rank"] == i + 1 and c["text"] == titles[i]
    assert [c["id"] for c in reranker.rerank(query, candidates)] == [
        100 + i for i in np.argsort(-scores, kind="stable")
    ]
    # batching by length must not change any score
    assert np.allclose(
        Reranker(params_path=os.path.join(trained, "model_best"), batch_size=64).score(query, titles), scores, atol=1e-6
    )


def test_rerank_results_rewrites_recall_result_and_reports_before_and_after(trained, tmp_path, capsys):
    pairs = list(read_text_pairs(sample_file("recall", "dev.csv")))[:6]
    corpus = [t for _, t in pairs]
    # hand-made recall: each query's gold at rank 3 of 5
    rows = []
    for i, (query, gold) in enumerate(pairs):
        others = [corpus[(i + k) % len(corpus)] for k in range(1, 5)]
        for rank, doc in enumerate(others[:2] + [gold] + others[2:]):
            rows.append((query, doc, f"{0.9 - 0.1 * rank:.2f}"))
    recall_file, pairs_file = tmp_path / "recall_result.txt", tmp_path / "dev.csv"
    write_lines(recall_file, rows)
    write_lines(pairs_file, pairs)
    output = tmp_path / "reranked.txt"
    ckpt = os.path.join(trained, "model_best")
    reranked = rerank_results.main(
        [
            "--recall_result_file",
            str(recall_file),
            "--output_file",
            str(output),
            "--params_path",
            ckpt,
            "--recall_num",
            "4",
            "--similar_text_pair_file",
            str(pairs_file),
        ]
    )
    out_rows = [line.rstrip("\n").split("\t") for line in open(output, encoding="utf-8")]
    assert len(out_rows) == 6 * 4  # --recall_num 4 of the 5
    reranker = Reranker(params_path=ckpt)
    for query, _ in pairs:
        written = [(d, float(s)) for q, d, s in out_rows if q == query]
        recalled = [d for q, d, _ in rows if q == query][:4]
        assert sorted(d for d, _ in written) == sorted(recalled)
        assert [s for _, s in written] == sorted((s for _, s in written), reverse=True)
        expected = dict(zip(recalled, reranker.score(query, recalled)))
        assert all(abs(expected[d] - s) < 1e-5 for d, s in written)
    # the printed "after" line is what the shared evaluate gives on the written file
    after = evaluate_file(str(pairs_file), str(output))
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith("recall ") and "recall@1=0.00" in printed[0]  # gold always at rank 3 before
    assert f"recall@1={after['recall@1']:.2f}" in printed[1] and reranked is not None
    with pytest.raises(SystemExit):
        rerank_results.main(
            ["--recall_result_file", str(recall_file), "--params_path", ckpt, "--recall_num", "4", "--top_k", "9"]
        )

    # fused with the recall ranks: each list is the RRF order of the reranker's and the recall's ranks
    fused_file = tmp_path / "fused.txt"
    fused = rerank_results.main(
        [
            "--recall_result_file",
            str(recall_file),
            "--output_file",
            str(fused_file),
            "--params_path",
            ckpt,
            "--recall_num",
            "4",
            "--fuse_recall_rank",
            "2",
        ]
    )
    for query, _ in pairs:
        recalled = [d for q, d, _ in rows if q == query][:4]
        by_reranker = [d for d, _ in reranked[query]]
        expected = {d: 1 / (2 + by_reranker.index(d) + 1) + 1 / (2 + recalled.index(d) + 1) for d in recalled}
        assert [d for d, _ in fused[query]] == sorted(recalled, key=lambda d: (-expected[d], by_reranker.index(d)))
        assert all(abs(score - expected[d]) < 1e-9 for d, score in fused[query])
    # both orders from one reranking (the pipeline's rerank_eval): the same two files as the two runs above
    both = [tmp_path / "both_reranked.txt", tmp_path / "both_fused.txt"]
    rerank_results.main(
        ["--recall_result_file", str(recall_file), "--output_file", str(both[0]), "--fused_output_file", str(both[1])]
        + ["--params_path", ckpt, "--recall_num", "4", "--fuse_recall_rank", "2"]
    )
    assert [f.read_text(encoding="utf-8") for f in both] == [
        f.read_text(encoding="utf-8") for f in (output, fused_file)
    ]
    with pytest.raises(SystemExit):  # the fused order needs its constant
        rerank_results.main(
            ["--recall_result_file", str(recall_file), "--params_path", ckpt, "--fused_output_file", str(both[1])]
        )


def test_rank_fusion_on_a_hand_made_case():
    # reranker: c, a, b; recall: a, b, c. With k = 0 a gets 1/2 + 1/1, c 1/1 + 1/3, b 1/3 + 1/2
    assert [d for d, _ in rerank_results.fuse_ranks(["a", "b", "c"], ["c", "a", "b"], 0)] == ["a", "c", "b"]
    # swapped ranks tie: the reranker's order is kept
    assert [d for d, _ in rerank_results.fuse_ranks(["a", "c"], ["c", "a"], 60)] == ["c", "a"]
