"""domain_pretrain/: data tools, masking, training, kill-and-resume, two processes, both architectures.

The tiny models of conftest.py (hidden 32, one layer) over the bundled sample's pretrain/domain_corpus.txt."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest
from conftest import REPO, SAMPLE, launch_two_processes, make_tiny_model

from domain_pretrain.data import IndexedCorpus, PretrainingDataset, split_documents
from domain_pretrain.data_tools.create_pretraining_data import build, read_documents, split_sentences
from domain_pretrain.run_pretrain import main as run_pretrain
from ns_common.modeling import load_tokenizer

CORPUS = os.path.join(SAMPLE, "pretrain", "domain_corpus.txt")


@pytest.fixture(scope="module")
def data_prefix(tiny_pretrain_models, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("pretrain_data") / "sample")
    stats = build([CORPUS], tiny_pretrain_models["ernie"], prefix)
    assert stats["documents"] == 500
    return prefix


def train_args(tiny_pretrain_models, data_prefix, output_dir, *extra, model_type="ernie"):
    return [
        "--model_name_or_path", tiny_pretrain_models[model_type], "--input_prefix", data_prefix, "--output_dir", str(output_dir),
        "--split", "80,10,10", "--max_seq_len", "64", "--micro_batch_size", "8", "--max_lr", "5e-3",
        "--warmup_rate", "0.1", "--eval_freq", "6", "--eval_iters", "3", "--logging_freq", "4", "--seed", "7", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference_run(tiny_pretrain_models, data_prefix, tmp_path_factory):
    """An uninterrupted 12-step run, checkpoints every 4 steps."""
    output_dir = tmp_path_factory.mktemp("pretrain_reference")
    run_pretrain(train_args(tiny_pretrain_models, data_prefix, output_dir, "--max_steps", "12", "--save_steps", "4"))
    return output_dir


def test_sentence_split_keeps_numbers_and_splits_cjk_ascii_stops():
    text = "本文提出方法。效果提高3.5%！结果如下;结论.该方法有效？ok. fine"
    assert split_sentences(text) == [
        "本文提出方法。",
        "效果提高3.5%！",
        "结果如下;",
        "结论.",
        "该方法有效？",
        "ok. fine",
    ]


def test_round_trip_ids_decode_to_text_with_jieba_word_boundaries(tiny_pretrain_models, data_prefix):
    import jieba

    tokenizer = load_tokenizer(tiny_pretrain_models["ernie"])
    corpus = IndexedCorpus(data_prefix)
    documents = list(read_documents([CORPUS]))
    assert corpus.n_docs == len(documents) == 500
    assert len(corpus.sents) - 1 == sum(len(d) for d in documents)
    assert corpus.ids.dtype == np.uint16
    for doc_no in (0, 1, 250, 499):
        sentences = documents[doc_no]
        for i, sentence in enumerate(sentences):
            sent_no = corpus.docs[doc_no] + i
            start, end = corpus.sents[sent_no], corpus.sents[sent_no + 1]
            tokens = tokenizer.convert_ids_to_tokens([int(x) for x in corpus.ids[start:end]])
            assert tokenizer.unk_token not in tokens
            pieces = [t[2:] if t.startswith("##") else t for t in tokens]
            assert "".join(pieces) == "".join(sentence.lower().split())
            # tokens grouped at word starts give back jieba's words
            starts = corpus.word_starts[start:end]
            words, current = [], ""
            for piece, is_start in zip(pieces, starts):
                if is_start and current:
                    words.append(current)
                    current = ""
                current += piece
            words.append(current)
            assert words == [w.lower() for w in jieba.lcut(sentence) if w.strip()]


def test_blank_line_documents_and_bad_lines(tmp_path, tiny_pretrain_models, caplog):
    path = tmp_path / "blank.txt"
    path.write_bytes(
        "第一篇的第一句。第二句\n第三句。\n\n\n第二篇只有一句\n".encode() + b"\xff\xfe bad\n\n" + "第三篇。\n".encode()
    )
    documents = list(read_documents([str(path)], doc_format="blank"))
    assert documents == [["第一篇的第一句。", "第二句", "第三句。"], ["第二篇只有一句"], ["第三篇。"]]
    assert "invalid UTF-8 (line 6)" in caplog.text
    stats = build([str(path)], tiny_pretrain_models["ernie"], str(tmp_path / "blank"), doc_format="blank")
    assert (stats["documents"], stats["sentences"]) == (3, 5)


def test_missing_input_is_a_one_line_error(tmp_path, tiny_pretrain_models, capsys):
    from domain_pretrain.data_tools.create_pretraining_data import main as create_data

    with pytest.raises(SystemExit) as exit_info:
        create_data(
            [
                "--input_path",
                str(tmp_path / "nope.txt"),
                "--model_name_or_path",
                tiny_pretrain_models["ernie"],
                "--output_prefix",
                str(tmp_path / "x"),
            ]
        )
    assert exit_info.value.code == 2
    assert "nope.txt" in capsys.readouterr().err


def test_masking_statistics_whole_words_and_sentence_order(tiny_pretrain_models, data_prefix):
    tokenizer = load_tokenizer(tiny_pretrain_models["ernie"])
    corpus = IndexedCorpus(data_prefix)
    train_docs, valid_docs, test_docs = split_documents(corpus.n_docs, "80,10,10")
    assert (len(train_docs), len(valid_docs), len(test_docs)) == (400, 50, 50)
    assert not set(train_docs) & set(test_docs)
    dataset = PretrainingDataset(corpus, train_docs, tokenizer, max_seq_len=64, masked_lm_prob=0.15, seed=3)
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id}
    n_real = n_masked = n_mask_token = n_kept = n_sop = 0
    for g in range(1500):
        e = dataset.example(g)
        ids, positions, labels = e["input_ids"], e["masked_positions"], e["masked_labels"]
        n_real += len(ids) - 3
        n_masked += len(positions)
        n_mask_token += int((ids[positions] == tokenizer.mask_token_id).sum())
        n_kept += int((ids[positions] == labels).sum())
        n_sop += e["sop_label"]
        assert not special & set(labels.tolist())
        # whole words: a word's tokens are all selected or none
        selected = np.zeros(len(ids), bool)
        selected[positions] = True
        word_no = np.cumsum(e["word_starts"])
        word_no[[0, len(ids) - 1]] = -1  # [CLS] and the final [SEP] belong to no word
        word_no[np.flatnonzero(e["token_type_ids"])[0] - 1] = -1  # nor does the middle [SEP]
        for w in np.unique(word_no[selected]):
            assert w >= 0 and selected[word_no == w].all(), f"sample {g}: word {w} partly masked"
        # A and B are consecutive text of one document: restored, (B, A) if swapped, it is a slice of it
        restored = ids.copy()
        restored[positions] = labels
        sep = np.flatnonzero(restored == tokenizer.sep_token_id)[0]
        a, b = restored[1:sep], restored[sep + 1 : -1]
        first, n_sents = dataset.samples[dataset.sample_at(g)]
        source = corpus.ids[corpus.sents[first] : corpus.sents[first + n_sents]].astype(np.int64)
        joined = np.concatenate([b, a] if e["sop_label"] else [a, b])
        assert "," + ",".join(map(str, joined)) + "," in "," + ",".join(map(str, source)) + ","
    assert 0.13 < n_masked / n_real < 0.16
    assert 0.76 < n_mask_token / n_masked < 0.84
    assert 0.07 < n_kept / n_masked < 0.13
    assert 0.46 < n_sop / 1500 < 0.54
    # deterministic per sample number, different across sample numbers
    assert np.array_equal(dataset.example(5)["input_ids"], dataset.example(5)["input_ids"])
    assert not np.array_equal(dataset.example(5)["input_ids"], dataset.example(6)["input_ids"])


def test_training_lowers_held_out_mlm_loss_and_saves_a_loadable_backbone(reference_run):
    from paddlenlp.transformers import ErnieModel

    with open(reference_run / "pretrain_summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["steps"] == 12 and summary["consumed_samples"] == 96
    assert summary["test_final"]["mlm_loss"] < summary["test_initial"]["mlm_loss"] - 0.3
    assert [h["step"] for h in summary["valid_history"]] == [6, 12]
    assert summary["valid_history"][-1]["mlm_loss"] < summary["valid_history"][0]["mlm_loss"]
    assert sorted(p.name for p in reference_run.glob("model_*")) == ["model_12", "model_4", "model_8", "model_last"]
    model = ErnieModel.from_pretrained(str(reference_run / "final"))
    assert model.config.hidden_size == 32
    assert load_tokenizer(str(reference_run / "final")).vocab_size == model.config.vocab_size


def test_frozen_word_embeddings_stay_while_the_layers_learn(tiny_pretrain_models, data_prefix, tmp_path):
    run_pretrain(
        train_args(tiny_pretrain_models, data_prefix, tmp_path, "--max_steps", "8", "--freeze_word_embeddings")
    )
    with open(tmp_path / "pretrain_summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["test_final"]["mlm_loss"] < summary["test_initial"]["mlm_loss"] - 0.1
    before = paddle.load(os.path.join(tiny_pretrain_models["ernie"], "model_state.pdparams"))
    after = paddle.load(str(tmp_path / "final" / "model_state.pdparams"))
    word = [k for k in after if k.endswith("word_embeddings.weight")]
    assert len(word) == 1 and np.array_equal(after[word[0]].numpy(), before[word[0]].numpy())
    changed = [k for k in after if k in before and not np.array_equal(after[k].numpy(), before[k].numpy())]
    assert any("encoder" in k for k in changed), changed


def test_span_views_are_the_unmasked_spans_and_leave_the_mlm_masks_alone(tiny_pretrain_models, data_prefix):
    tokenizer = load_tokenizer(tiny_pretrain_models["ernie"])
    corpus = IndexedCorpus(data_prefix)
    docs = split_documents(corpus.n_docs, "80,10,10")[0]
    plain = PretrainingDataset(corpus, docs, tokenizer, max_seq_len=64, masked_lm_prob=0.15, seed=3)
    with_spans = PretrainingDataset(
        corpus, docs, tokenizer, max_seq_len=64, masked_lm_prob=0.15, seed=3, span_views=True
    )
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    for g in range(300):
        e, reference = with_spans.example(g), plain.example(g)
        for key in reference:
            assert np.array_equal(np.asarray(e[key]), np.asarray(reference[key])), key
        restored = e["input_ids"].copy()
        restored[e["masked_positions"]] = e["masked_labels"]
        middle = np.flatnonzero(restored == sep)[0]
        first, second = restored[1:middle], restored[middle + 1 : -1]
        a, b = (second, first) if e["sop_label"] else (first, second)  # the views keep document order
        assert np.array_equal(e["span_a_ids"], np.concatenate([[cls], a, [sep]]))
        assert np.array_equal(e["span_b_ids"], np.concatenate([[cls], b, [sep]]))
    batch = with_spans.batch(range(4))
    assert batch["span_a_ids"].shape[0] == batch["span_b_ids"].shape[0] == 4


def test_span_contrast_trains_the_mean_pooled_embedding_the_recall_stages_use(
    tiny_pretrain_models, data_prefix, tmp_path
):
    from domain_pretrain.model import SPAN_CONTRAST_SCALE, PretrainingModel
    from ns_common.modeling import load_backbone
    from ns_common.semantic import SemanticIndexBase

    run_pretrain(
        train_args(
            tiny_pretrain_models, data_prefix, tmp_path, "--max_steps", "12", "--span_contrast", "--max_lr", "1e-2"
        )
    )
    with open(tmp_path / "pretrain_summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    before, after = summary["test_initial"], summary["test_final"]
    assert after["span_loss"] < before["span_loss"] - 0.1 and after["span_acc"] > before["span_acc"]
    assert after["mlm_loss"] < before["mlm_loss"] - 0.3
    saved = paddle.load(str(tmp_path / "final" / "model_state.pdparams"))
    assert not any("sop_classifier" in k or "mlm_" in k for k in saved)  # the heads stay out of the backbone

    # the logits are the scaled cosines of exactly the embedding a recall encoder (mean pooling) computes
    model = PretrainingModel(load_backbone(str(tmp_path / "final")), span_contrast=True)
    model.eval()
    tokenizer = load_tokenizer(tiny_pretrain_models["ernie"])
    dataset = PretrainingDataset(IndexedCorpus(data_prefix), range(40), tokenizer, max_seq_len=64, span_views=True)
    batch = dataset.batch(range(6))
    span_logits = model(
        *[
            paddle.to_tensor(batch[k])
            for k in ("input_ids", "token_type_ids", "masked_positions", "span_a_ids", "span_b_ids")
        ]
    )[2]
    encoder = SemanticIndexBase(model.backbone, pooling="mean")
    a, b = (
        encoder.get_pooled_embedding(paddle.to_tensor(batch[k]), with_dropout=False)
        for k in ("span_a_ids", "span_b_ids")
    )
    np.testing.assert_allclose(span_logits.numpy(), SPAN_CONTRAST_SCALE * (a @ b.T).numpy(), atol=1e-4)


def test_kill_and_resume_equals_uninterrupted_run(tiny_pretrain_models, data_prefix, reference_run, tmp_path):
    args = train_args(tiny_pretrain_models, data_prefix, tmp_path, "--max_steps", "12", "--save_steps", "4")
    killed = subprocess.run(
        [sys.executable, "domain_pretrain/run_pretrain.py", *args, "--kill_at_step", "10"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    with open(tmp_path / "model_last" / "trainer_state.json", encoding="utf-8") as f:
        assert json.load(f)["step"] == 8  # steps 9 and 10 were lost with the kill
    assert not (tmp_path / "final").exists()

    run_pretrain(args)  # the same command again resumes from model_last
    with open(tmp_path / "pretrain_summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert (summary["steps"], summary["consumed_samples"]) == (12, 96)
    resumed = paddle.load(str(tmp_path / "final" / "model_state.pdparams"))
    reference = paddle.load(str(reference_run / "final" / "model_state.pdparams"))
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert np.array_equal(resumed[key].numpy(), reference[key].numpy()), key


def test_resume_refuses_other_sampling_flags(tiny_pretrain_models, data_prefix, reference_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_pretrain(train_args(tiny_pretrain_models, data_prefix, reference_run, "--max_steps", "12", "--seed", "8"))
    assert exit_info.value.code == 2
    assert "--seed 8 (checkpoint: 7)" in capsys.readouterr().err


def test_a_diverging_resume_stops_at_once_and_keeps_final_and_model_last(
    tiny_pretrain_models, data_prefix, reference_run, tmp_path, capsys
):
    """Issue 17: resumed with a learning rate that breaks the model, the run stops at the broken step with one
    line; final/ and model_last/ of the good run stay byte for byte."""
    import hashlib
    import shutil

    output_dir = tmp_path / "run"
    shutil.copytree(reference_run, output_dir)

    def digest():
        return {
            name: hashlib.sha1((output_dir / name / "model_state.pdparams").read_bytes()).hexdigest()
            for name in ("final", "model_last")
        }

    before = digest()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_pretrain(
            train_args(
                tiny_pretrain_models,
                data_prefix,
                output_dir,
                "--max_steps",
                "16",
                "--max_lr",
                "1e30",
                "--min_lr",
                "1e30",
            )
        )
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    # the loss turns NaN (or, first, the weights) a step or three after the resume, before any save
    assert re.search(
        r"^error: step 1[3-6]: (the loss is nan|the update made the weights NaN/inf); stopped without saving", err, re.M
    ), err
    assert "Traceback" not in err
    assert digest() == before


def test_flag_and_vocabulary_mismatches_fail_early(tiny_pretrain_models, data_prefix, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_pretrain(train_args(tiny_pretrain_models, data_prefix, tmp_path, "--use_amp"))
    assert "--use_amp needs --device gpu" in capsys.readouterr().err

    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "的"]
    other = make_tiny_model(str(tmp_path / "other_vocab"), "ernie", vocab=vocab, max_position_embeddings=64)
    with pytest.raises(SystemExit):
        run_pretrain(train_args({"ernie": other}, data_prefix, tmp_path / "out"))
    assert "another vocabulary" in capsys.readouterr().err


def test_ernie_gram_pretrains_and_loads_as_ernie_gram(tiny_pretrain_models, data_prefix, tmp_path):
    from paddlenlp.transformers import ErnieGramModel

    # a bootstrapped ERNIE and ERNIE-Gram share a vocabulary, hence the same data
    run_pretrain(
        train_args(
            tiny_pretrain_models,
            data_prefix,
            tmp_path,
            "--max_steps",
            "2",
            "--model_type",
            "ernie-gram",
            model_type="ernie-gram",
        )
    )
    model = ErnieGramModel.from_pretrained(str(tmp_path / "final"))
    assert model.config.hidden_size == 32
    with open(tmp_path / "pretrain_summary.json", encoding="utf-8") as f:
        assert json.load(f)["model_type"] == "ernie-gram"


@pytest.mark.slow
def test_two_processes_end_with_identical_weights(tiny_pretrain_models, data_prefix, tmp_path):
    args = train_args(tiny_pretrain_models, data_prefix, tmp_path / "out", "--max_steps", "3", "--save_steps", "3")
    result, _ = launch_two_processes("domain_pretrain/run_pretrain.py", args, tmp_path / "logs")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    checksums = [(tmp_path / "out" / f"weights_checksum.rank{r}.txt").read_text() for r in (0, 1)]
    assert checksums[0] == checksums[1]
    with open(tmp_path / "out" / "pretrain_summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert (summary["world_size"], summary["consumed_samples"]) == (2, 48)
