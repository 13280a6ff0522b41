"""Every entry point that reads a file, crossed with the bad files a user can hand it, run in-process (one import
per script, `main(argv)` called per case: no subprocess, no paddle import per case).

Each row of ENTRY_POINTS is data: the script, the argument template and which flag is the input under test.
{in} is the input under test (`{in}.jsonl`: a file of that extension), {out} an output file, {outdir} an output
directory; {corpus}, {pairs}, {recall}, {pairwise}, {labeled}, {npy}, {ernie}, {gram}, {uri} valid companions.
Each case must end in SystemExit(2) with exactly one line starting with "error:" on stderr that names the file (or
its flag), never a traceback; the output cases also leave the input as it was. (Argparse's own errors are not among
these cases: every flag is well-formed, only the files are bad.)
"""

import importlib
import importlib.util
import os
import shutil
import sys
import time

import numpy as np
import pytest
from conftest import REPO, sample_file

# script, argument template, input flag, input file name inside {in} when {in} is a directory (prepare_csl), outputs
# outputs: "file" ({out}), "dir" ({outdir}), "prefix" ({out} + "_ids.npy"), None (writes no file: no output cases)
ENTRY_POINTS = [
    ("data/prepare_csl.py", "--csl_dir {in} --output_dir {outdir}", "csl_dir", "papers.jsonl", "dir"),
    ("data/split_train.py", "--train_file {in} --output_dir {outdir}", "train_file", None, "dir"),
    (
        "search/query.py",
        "--query_file {in} --recall_result_file {out} --mode bm25 --uri {uri}",
        "query_file",
        None,
        "file",
    ),
    (
        "ns_common/evaluate.py",
        "--similar_text_pair_file {in} --recall_result_file {recall} --output_json {out}",
        "similar_text_pair_file",
        None,
        "file",
    ),
    (
        "ns_common/evaluate.py",
        "--similar_text_pair_file {pairs} --recall_result_file {in} --output_json {out}",
        "recall_result_file",
        None,
        "file",
    ),
    (
        "ernie_matching/rerank_results.py",
        "--recall_result_file {in} --output_file {out} --model_dir {gram}",
        "recall_result_file",
        None,
        "file",
    ),
    (
        "ernie_matching/evaluate.py",
        "--test_file {in} --results_file {out} --model_dir {gram}",
        "test_file",
        None,
        "file",
    ),
    (
        "recall/milvus/feature_extract.py",
        "--corpus_file {in} --output_path {out}.npy --model_dir {ernie}",
        "corpus_file",
        None,
        "file",
    ),
    ("recall/milvus/insert.py", "--data_path {in} --embedding_path {npy} --uri {uri}", "data_path", None, None),
    # a corpus of paper records (.jsonl), read by its own parser
    ("recall/milvus/insert.py", "--data_path {in}.jsonl --embedding_path {npy} --uri {uri}", "data_path", None, None),
    ("recall/milvus/insert.py", "--data_path {corpus} --embedding_path {in} --uri {uri}", "embedding_path", None, None),
    (
        "inbatch_negative/mine_hard_negatives.py",
        "--train_set_file {in} --corpus_file {corpus} --output_file {out}",
        "train_set_file",
        None,
        "file",
    ),
    ("ernie_matching/pseudo_pairs.py", "--corpus_file {in} --output_file {out}", "corpus_file", None, "file"),
    (
        "ernie_matching/mine_pairwise.py",
        "--recall_result_file {in} --pairs_file {pairs} --output_train_file {out}",
        "recall_result_file",
        None,
        "file",
    ),
    (
        "ernie_matching/predict_pairwise.py",
        "--input_file {in} --output_file {out} --model_dir {gram}",
        "input_file",
        None,
        "file",
    ),
    (
        "search/fit.py",
        "--train_file {in} --corpus_file {corpus} --output_dir {outdir} --uri {uri}",
        "train_file",
        None,
        "dir",
    ),
    (
        "ns_common/bm25.py",
        "--corpus_file {corpus} --similar_text_pair_file {in} --recall_result_file {out}",
        "similar_text_pair_file",
        None,
        "file",
    ),
    (
        "ns_common/recall.py",
        "--corpus_file {corpus} --similar_text_pair_file {in} --model_name_or_path {ernie} --recall_result_dir {outdir}",
        "similar_text_pair_file",
        None,
        "dir",
    ),
    (
        "simcse/train.py",
        "--train_set_file {in} --model_name_or_path {ernie} --save_dir {outdir}",
        "train_set_file",
        None,
        "dir",
    ),
    (
        "inbatch_negative/train_batch_neg.py",
        "--train_set_file {in} --model_name_or_path {ernie} --save_dir {outdir}",
        "train_set_file",
        None,
        "dir",
    ),
    (
        "ernie_matching/train_pairwise.py",
        "--train_file {in} --test_file {labeled} --model_name_or_path {gram} --save_dir {outdir}",
        "train_file",
        None,
        "dir",
    ),
    (
        "domain_pretrain/data_tools/create_pretraining_data.py",
        "--input_path {in} --model_name_or_path {ernie} --output_prefix {out}",
        "input_path",
        None,
        "prefix",
    ),
]
INPUT_CASES = ("missing", "empty", "directory", "binary", "not_utf8")
OUTPUT_CASES = ("unwritable_output", "output_is_input")
# the column "output = one of the command's other inputs": the companion each writing command also reads, a Milvus
# Lite database ({uri}) or a model directory ({ernie} / {gram}); the output is set to the database (a directory
# output: the directory holding it) or to a file of the model (a directory output: the model directory itself)
OTHER_INPUTS = {
    "search/query.py": "uri",
    "search/fit.py": "uri",
    "recall/milvus/feature_extract.py": "ernie",
    "ns_common/recall.py": "ernie",
    "ernie_matching/rerank_results.py": "gram",
    "ernie_matching/evaluate.py": "gram",
    "ernie_matching/predict_pairwise.py": "gram",
}
VALID = {
    "embedding_path": "{npy}",
    "corpus_file": "{corpus}",
    "data_path": "{corpus}",
    "input_path": "{corpus}",
    "query_file": "{pairs}",
    "similar_text_pair_file": "{pairs}",
    "train_file": "{pairs}",
    "train_set_file": "{pairs}",
    "recall_result_file": "{recall}",
    "test_file": "{labeled}",
    "input_file": "{pairs}",
}
VALID_FOR = {
    ("ernie_matching/train_pairwise.py", "train_file"): "{pairwise}",
    ("simcse/train.py", "train_set_file"): "{corpus}",
}


def load_main(script):
    """The script's main, imported once: as its package's module (search/query.py: search.query), or by path for a
    folder that is no package (data/: its scripts import their neighbours by plain name)."""
    path = os.path.join(REPO, script)
    directory = os.path.dirname(path)
    if os.path.isfile(os.path.join(directory, "__init__.py")):
        return importlib.import_module(script[: -len(".py")].replace("/", ".")).main
    name = "matrix_" + script.replace("/", "_").replace(".py", "")
    if name not in sys.modules:
        sys.path.insert(0, directory)
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(directory)
    return sys.modules[name].main


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_ernie, tiny_ernie_gram):
    root = tmp_path_factory.mktemp("matrix")
    corpus = sample_file("recall", "corpus.csv")
    n_docs = sum(1 for _ in open(corpus, encoding="utf-8"))
    npy = str(root / "emb.npy")
    np.save(npy, np.eye(n_docs, 8, dtype=np.float32) + 0.1)
    recall = str(root / "recall.txt")
    load_main("ns_common/bm25.py")(
        [
            "--corpus_file",
            corpus,
            "--similar_text_pair_file",
            sample_file("recall", "dev.csv"),
            "--recall_result_file",
            recall,
            "--recall_num",
            "5",
        ]
    )
    return {
        "root": root,
        "corpus": corpus,
        "pairs": sample_file("recall", "dev.csv"),
        "recall": recall,
        "npy": npy,
        "pairwise": sample_file("sort", "train_pairwise.csv"),
        "labeled": sample_file("sort", "dev_pairwise.csv"),
        "ernie": tiny_ernie,
        "gram": tiny_ernie_gram,
        "uri": str(root / "absent.db"),
    }


def make_bad(kind, path):
    """The bad input of a case at path."""
    if kind == "empty":
        open(path, "wb").close()
    elif kind == "directory":
        os.makedirs(path)
    elif kind == "binary":
        with open(path, "wb") as f:
            f.write(bytes(range(256)) * 8 + b"\n\x00\x01\x02\n")
    elif kind == "not_utf8":
        with open(path, "wb") as f:
            f.write("中文标题\t中文\n查询\t标题\n".encode("gbk"))


def cases():
    for script, template, flag, inner, outputs in ENTRY_POINTS:
        kinds = INPUT_CASES + (OUTPUT_CASES if outputs else ())
        if inner:  # the output directory may be the input directory: the layout's files are not its files
            kinds = tuple(k for k in kinds if k != "output_is_input")
        if script in OTHER_INPUTS:
            kinds += ("output_is_other_input",)
        for kind in kinds:
            name = flag + (".jsonl" if "{in}.jsonl" in template else "")
            yield pytest.param(script, template, flag, inner, outputs, kind, id=f"{script}:{name}:{kind}")


def build_argv(files, case_dir, script, template, flag, inner, outputs, kind):
    """The argv of one case and the path that its one error line must name."""
    values = {k: v for k, v in files.items() if k != "root"}
    values["out"] = os.path.join(case_dir, "out", "result.txt")
    values["outdir"] = os.path.join(case_dir, "outdir")
    suffix = ".jsonl" if "{in}.jsonl" in template else ""
    target = os.path.join(case_dir, "input" + suffix)
    if kind in INPUT_CASES:
        if inner:  # the bad file is one file of an input directory
            os.makedirs(target)
            with open(os.path.join(target, "abstracts.jsonl"), "w", encoding="utf-8") as f:
                f.write('{"abstract": "摘要"}\n')
            make_bad(kind, os.path.join(target, inner)) if kind != "missing" else None
            named = target  # the directory (its file papers.jsonl is inside it)
        else:
            make_bad(kind, target) if kind != "missing" else None
            named = target
        values["in"] = target[: len(target) - len(suffix)]
        return template.format(**values).split(), named, None
    # output cases: a valid input (a copy, so that a run that overwrites it harms nothing)
    if inner:  # a valid CSL directory
        os.makedirs(target)
        with open(os.path.join(target, "papers.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(f'{{"title": "标题{i}", "keywords": ["关键词{i}", "词{i}"]}}\n' for i in range(10))
        with open(os.path.join(target, "abstracts.jsonl"), "w", encoding="utf-8") as f:
            f.write('{"abstract": "摘要"}\n')
    else:
        shutil.copyfile((VALID_FOR.get((script, flag)) or VALID[flag]).format(**values), target)
    values["in"] = target
    out_key = "outdir" if outputs == "dir" else "out"
    if kind == "output_is_other_input":
        other = OTHER_INPUTS[script]
        os.makedirs(os.path.join(case_dir, "other"))
        if other == "uri":  # a copy of a database (its bytes do not matter: the check comes before Milvus opens it)
            values["uri"] = target = os.path.join(case_dir, "other", "neural_search.db")
            with open(target, "wb") as f:
                f.write(b"milvus-lite database" * 100)
            values[out_key] = os.path.dirname(target) if outputs == "dir" else target
        else:  # a copy of the model: its weights file, or its directory
            values[other] = model = shutil.copytree(values[other], os.path.join(case_dir, "other", "model"))
            target = os.path.join(
                model, sorted(f for f in os.listdir(model) if f.endswith((".pdparams", ".pdiparams")))[0]
            )
            values[out_key] = model if outputs == "dir" else target
        argv = template.format(**values).split()
        if "{out}.npy" in template:  # feature_extract's --output_path: a .npy file or a directory to write it into
            values[out_key] = os.path.dirname(target)
            argv[argv.index("--output_path") + 1] = values[out_key]
        return argv, values[out_key], target
    if kind == "unwritable_output":
        blocker = os.path.join(case_dir, "regular_file")
        open(blocker, "w").close()
        values[out_key] = os.path.join(blocker, "sub")
        named = blocker
    elif outputs == "prefix":  # writes {prefix}_ids.npy: the input is named so
        os.replace(target, target + "_ids.npy")
        target = values["in"] = target + "_ids.npy"
        values[out_key] = target[: -len("_ids.npy")]
        named = target
    else:
        values[out_key] = target
        named = target
        if outputs == "dir" and template.count("{outdir}"):
            values[out_key] = target  # a file given as the output directory
    argv = template.format(**values).split()
    if script == "recall/milvus/feature_extract.py" and kind == "output_is_input":
        argv[argv.index("--output_path") + 1] = target
    return argv, named, target


@pytest.mark.parametrize("script,template,flag,inner,outputs,kind", list(cases()))
def test_cli_matrix(files, tmp_path, capsys, script, template, flag, inner, outputs, kind):
    main = load_main(script)
    argv, named, guarded = build_argv(files, str(tmp_path), script, template, flag, inner, outputs, kind)
    before = open(guarded, "rb").read() if guarded and os.path.isfile(guarded) else None
    start = time.time()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2, f"exit {exit_info.value.code}:\n{err[-2000:]}"
    assert len(error_lines) == 1 and "Traceback" not in err, err[-2000:]
    assert named in error_lines[0] or f"--{flag}" in error_lines[0], error_lines[0]
    if kind == "output_is_other_input":  # refused as an output, not by a later failure to open the database or model
        assert "of this run" in error_lines[0] or "of this command" in error_lines[0], error_lines[0]
    if before is not None:
        assert open(guarded, "rb").read() == before, "the input was overwritten"
    assert time.time() - start < 20, "a bad file is refused before any slow work"
