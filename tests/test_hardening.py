"""Issue 17: hostile-but-fair input to the training scripts, the encoders and insert.

Every bad flag or wrong model directory is one line before any work; a run whose loss turns NaN stops at
that step and leaves the checkpoints already written as they were; long texts cost linear time; a NaN
embedding row is refused before Milvus is touched. (The web service's share is in test_web_service.py.)
A tiny from-scratch ERNIE and ERNIE-Gram (hidden 32, 64 positions) from the bundled sample's vocabulary."""

import hashlib
import os
import time

import numpy as np
import paddle
import pytest
from conftest import SAMPLE, make_tiny_model, sample_file

from domain_pretrain import run_pretrain
from ernie_matching import train_pairwise
from ernie_matching.data import PairEncoder, PairwiseDataset
from inbatch_negative import train_batch_neg
from ns_common.errors import NonFiniteError
from ns_common.io import read_corpus, read_pairwise_train, write_lines
from ns_common.modeling import load_tokenizer
from ns_common.semantic import load_encoder
from ns_common.semantic_tools import export_encoder
from ns_common.text import CHARS_PER_TOKEN, convert_example
from recall.milvus import insert
from simcse import train as simcse_train

POSITIONS = 64


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny ERNIE and ERNIE-Gram backbones, the ERNIE one also exported (an export dir has no weights to train)."""
    texts = read_corpus(sample_file("recall", "train_unsupervised.csv"))
    root = tmp_path_factory.mktemp("hardening")
    dirs = {
        model_type: make_tiny_model(
            str(root / model_type), model_type, texts, seed=17, max_position_embeddings=POSITIONS
        )
        for model_type in ("ernie", "ernie-gram")
    }
    encoder, tokenizer = load_encoder(dirs["ernie"], output_emb_size=16)
    dirs["export"] = str(root / "export")
    export_encoder(encoder, tokenizer, dirs["export"])
    dirs["texts"] = str(root / "texts.csv")
    write_lines(dirs["texts"], texts[:64])
    return dirs


def one_error_line(capsys):
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ long texts: linear time


def test_encoding_a_long_pair_is_linear_and_equals_the_tokenizer(models):
    tokenizer = load_tokenizer(models["ernie-gram"])
    titles = read_corpus(os.path.join(SAMPLE, "milvus", "milvus_data.csv"))[:10]
    pairs = [(t, titles[-1 - i]) for i, t in enumerate(titles)] + [("语言 " * 40, "文化" * 300), (titles[0] * 50, "短")]
    for max_len in (16, 64):
        encoder = PairEncoder(tokenizer, max_len)
        for query, title in pairs:
            expected = tokenizer(text=query, text_pair=title, max_length=max_len, truncation=True)
            assert convert_example(query, tokenizer, max_len, title) == (
                expected["input_ids"],
                expected["token_type_ids"],
            )
            assert encoder.encode(query, title) == (expected["input_ids"], expected["token_type_ids"])
        single = tokenizer(text=pairs[-1][0], max_length=max_len, truncation=True)
        assert convert_example(pairs[-1][0], tokenizer, max_len) == (single["input_ids"], single["token_type_ids"])

    # a 1 MB field (issue: 100k characters took 4.2 s a pair, quadratic): cut to CHARS_PER_TOKEN per token first
    huge = ("".join(titles) * 2000)[: 1 << 20]
    start = time.perf_counter()
    ids, types = PairEncoder(tokenizer, 64).encode(huge, huge[::-1])
    assert time.perf_counter() - start < 1.0 and len(ids) == len(types) == 64
    assert convert_example(huge, tokenizer, 64)[0] == convert_example(huge[: CHARS_PER_TOKEN * 64], tokenizer, 64)[0]


def test_a_ranking_file_with_a_1mb_field_trains_without_delay(models, tmp_path):
    tokenizer = load_tokenizer(models["ernie-gram"])
    triples = list(read_pairwise_train(os.path.join(SAMPLE, "sort", "train_pairwise.csv")))[:20]
    triples[3] = (triples[3][0], "文献" * (1 << 19), triples[3][2])
    path = str(tmp_path / "train_pairwise.csv")
    write_lines(path, triples, header=("query", "title", "neg_title"))
    start = time.perf_counter()
    dataset = PairwiseDataset(list(read_pairwise_train(path)), PairEncoder(tokenizer, 64))
    assert time.perf_counter() - start < 3.0 and len(dataset) == 20
    assert len(dataset[3][0][0]) == 64


# ------------------------------------------------------------------ flags and model directories


def test_bad_numbers_and_wrong_model_dirs_are_one_line_before_any_work(models, tmp_path, capsys):
    texts, save_dir = models["texts"], tmp_path / "ckpt"
    simcse = ["--train_set_file", texts, "--save_dir", str(save_dir)]
    ranking = [
        "--train_file",
        os.path.join(SAMPLE, "sort", "train_pairwise.csv"),
        "--test_file",
        os.path.join(SAMPLE, "sort", "dev_pairwise.csv"),
        "--save_dir",
        str(save_dir),
    ]
    pretrain = [
        "--model_name_or_path",
        models["ernie"],
        "--input_prefix",
        str(tmp_path / "data"),
        "--output_dir",
        str(save_dir),
    ]
    cases = [
        (
            simcse_train.main,
            simcse + ["--model_name_or_path", models["ernie"], "--learning_rate", "nan"],
            "--learning_rate must be a finite number",
        ),
        (
            simcse_train.main,
            simcse + ["--model_name_or_path", models["ernie"], "--learning_rate", "inf"],
            "--learning_rate must be a finite number",
        ),
        (
            simcse_train.main,
            simcse + ["--model_name_or_path", models["ernie"], "--scale", "nan"],
            "--scale must be a finite number",
        ),
        (
            simcse_train.main,
            simcse + ["--model_name_or_path", models["ernie"], "--weight_decay", "-1"],
            "--weight_decay must be >= 0",
        ),
        (
            simcse_train.main,
            simcse + ["--model_name_or_path", models["ernie"], "--max_seq_length", "65"],
            f"--max_seq_length 65 exceeds the {POSITIONS} positions",
        ),
        (
            train_batch_neg.main,
            [
                "--train_set_file",
                os.path.join(SAMPLE, "recall", "train.csv"),
                "--save_dir",
                str(save_dir),
                "--model_name_or_path",
                models["ernie"],
                "--max_seq_length",
                "512",
            ],
            "exceeds the 64 positions",
        ),
        (
            simcse_train.main,
            simcse + ["--model_name_or_path", models["export"]],
            "it is an exported model (inference.json)",
        ),
        (
            train_pairwise.main,
            ranking + ["--model_name_or_path", models["export"]],
            "it is an exported model (inference.json)",
        ),
        (run_pretrain.main, pretrain + ["--max_lr", "nan"], "--max_lr must be a finite number"),
        (run_pretrain.main, pretrain + ["--adam_beta2", "1"], "--adam_beta2 must be in [0, 1)"),
    ]
    for main, argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
        assert message in one_error_line(capsys), argv
    assert not save_dir.exists()


def digests(folder):
    return {
        name: hashlib.sha1((folder / name / "model_state.pdparams").read_bytes()).hexdigest()
        for name in sorted(os.listdir(folder))
        if (folder / name / "model_state.pdparams").is_file()
    }


def test_a_diverging_run_stops_at_the_broken_step_and_keeps_the_good_checkpoints(models, tmp_path, capsys):
    save_dir = tmp_path / "simcse"
    argv = [
        "--model_name_or_path",
        models["ernie"],
        "--train_set_file",
        models["texts"],
        "--save_dir",
        str(save_dir),
        "--output_emb_size",
        "16",
        "--max_seq_length",
        "32",
        "--batch_size",
        "16",
        "--warmup_proportion",
        "0",
    ]
    simcse_train.main(argv + ["--max_steps", "2"])
    good = digests(save_dir)
    assert set(good) == {"model_2", "model_final"}
    capsys.readouterr()
    # the same run with a learning rate that breaks the weights at once (the loss itself stays finite: paddle's
    # softmax makes NaN logits uniform), saving every step: it stops at that step, before saving it
    with pytest.raises(SystemExit) as exit_info:
        simcse_train.main(
            argv + ["--max_steps", "8", "--learning_rate", "1e20", "--max_grad_norm", "0", "--save_steps", "1"]
        )
    assert exit_info.value.code == 3
    assert "error: step 2: the update made the weights NaN/inf; stopped without saving anything" in one_error_line(
        capsys
    )
    after = digests(save_dir)
    assert {name: after[name] for name in good} == good and set(after) == set(good) | {"model_1"}
    state = paddle.load(str(save_dir / "model_1" / "model_state.pdparams"))  # saved before the broken step: finite
    assert all(np.isfinite(value.numpy()).all() for value in state.values())

    # a broken starting checkpoint is refused before the first step
    state["emb_reduce_linear.weight"][0, 0] = float("nan")
    os.makedirs(tmp_path / "broken")
    paddle.save(state, str(tmp_path / "broken" / "model_state.pdparams"))
    with pytest.raises(SystemExit):
        simcse_train.main(
            argv
            + ["--max_steps", "2", "--init_from_ckpt", str(tmp_path / "broken"), "--save_dir", str(tmp_path / "again")]
        )
    assert (
        "the starting model (--model_name_or_path, --init_from_ckpt): parameter emb_reduce_linear.weight holds NaN/inf"
        in one_error_line(capsys)
    )
    assert not os.path.exists(tmp_path / "again" / "model_final")


class Regression(paddle.nn.Layer):
    """y = w.x + b with a squared loss: a real model whose loss is infinite on a batch with an infinite input."""

    def __init__(self):
        super().__init__()
        self.linear = paddle.nn.Linear(2, 1)

    def forward(self, x, y):
        return ((self.linear(x).squeeze(-1) - y) ** 2).mean()


def test_a_nan_or_inf_loss_stops_training_at_that_step(tmp_path, capsys):
    import argparse

    from ns_common.train_utils import add_train_args, build_dataloader, train

    def run(examples):
        args = add_train_args(argparse.ArgumentParser()).parse_args(
            [
                "--model_name_or_path",
                "regression",
                "--save_dir",
                str(tmp_path),
                "--batch_size",
                "4",
                "--learning_rate",
                "0.01",
            ]
        )
        paddle.seed(1)

        def collate(samples):
            return {
                "x": paddle.to_tensor(np.stack([x for x, _ in samples])),
                "y": paddle.to_tensor(np.array([y for _, y in samples])),
            }

        return train(Regression(), None, build_dataloader(examples, 4, collate, shuffle=False), args)

    examples = [(np.array([i / 16, 1.0], dtype=np.float32), np.float32(i / 8)) for i in range(16)]
    assert run(examples)["steps"] == 4
    good = digests(tmp_path)
    examples[9] = (np.array([np.inf, 1.0], dtype=np.float32), np.float32(1.0))  # batch 3
    capsys.readouterr()
    with pytest.raises(
        NonFiniteError, match=r"^step 3: the loss is (inf|nan); stopped without saving anything"
    ) as error:
        run(
            examples
        )  # the library raises; an entry point (simcse/train.py above) turns it into one line and exit code 3
    assert error.value.exit_code == 3
    assert digests(tmp_path) == good


# ------------------------------------------------------------------ Milvus insert


def test_a_nan_embedding_row_is_refused_before_milvus(tmp_path, capsys):
    corpus = str(tmp_path / "corpus.csv")
    write_lines(corpus, ["文献一", "文献二", "文献三", "文献四", "文献五"])
    embeddings = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    embeddings[3, 2] = np.nan
    np.save(tmp_path / "emb.npy", embeddings)
    db = tmp_path / "milvus.db"
    with pytest.raises(SystemExit):
        insert.main(["--data_path", corpus, "--embedding_path", str(tmp_path / "emb.npy"), "--uri", str(db)])
    assert "row 3 (corpus line 4) holds NaN or inf; nothing inserted" in one_error_line(capsys)
    assert not db.exists()
