"""Shared test set-up.

Components that the test command (`make test`) installs are required, never skipped quietly: a test that
needs one that is missing fails with one line naming it and how to get it, unless the user opted out with
its variable (SKIP_BROWSER=1, SKIP_MILVUS_SERVER=1); then the test is skipped and the run's summary says so.

Also the bundled sample's paths and the tiny from-scratch models most tests train or run (TINY: hidden 32,
one layer), built once a run (session scope) and only read: a test that trains saves into its own folder.
paddle and the project are imported inside the helpers, so tests that need neither do not pay for them.
"""
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)

# component -> (what it is, opt-out variable, how to install it)
COMPONENTS = {
    "browser": ("Chromium", "SKIP_BROWSER", "`make test` or `bash scripts/setup_browser.sh` installs it (apt-get, root or sudo)"),
    "milvus_server": ("the Milvus 2.3.5 server", "SKIP_MILVUS_SERVER", "`make test` or `bash scripts/setup_milvus_server.sh` installs it (pip milvus==2.3.5)"),
}


SKIPPED = set()  # components whose tests were skipped on request in this run


def opted_out(component):
    variable = COMPONENTS[component][1]
    return os.environ.get(variable, "") not in ("", "0")


def require(component, problem):
    """Call where `component` turned out to be missing (problem: what is missing): skips the test when the
    user opted out, else fails it with one line."""
    name, variable, how = COMPONENTS[component]
    if opted_out(component):
        SKIPPED.add(component)
        pytest.skip(f"needs {name}: skipped on request ({variable}={os.environ[variable]})")
    pytest.fail(f"{problem}: {how}; or opt out with {variable}=1", pytrace=False)


@pytest.fixture(scope="session")
def chromium():
    """The Chromium executable the browser test drives (session scope: checked before any costlier fixture)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        require("browser", "no chromium on PATH")
    return path


def pytest_terminal_summary(terminalreporter):
    skipped = [f"{name} ({variable}={os.environ[variable]})" for component, (name, variable, _) in COMPONENTS.items() if component in SKIPPED]
    if skipped:
        terminalreporter.write_line(f"opted out of {', '.join(skipped)}: the tests that need it were skipped", yellow=True)


# ---------------------------------------------------------------- the bundled sample, tiny models


def sample_file(*parts):
    """The path of a file of the bundled sample (data/sample/<parts>); skips the test when it is missing."""
    path = os.path.join(SAMPLE, *parts)
    if not os.path.isfile(path):
        pytest.skip(f"bundled sample missing: {path}")
    return path


def make_tiny_model(save_dir, model_type, texts=None, vocab=None, seed=None, max_position_embeddings=128, sizes=TINY):
    """A from-scratch `mini` backbone of model_type ("ernie" or "ernie-gram") with `sizes` (TINY by default)
    and its tokenizer, saved in save_dir; the vocabulary is `vocab` (tokens) or built from `texts`.
    seed: paddle.seed right before the weights are drawn (None: whatever the generator holds)."""
    import paddle

    from ns_common.modeling import new_backbone, new_tokenizer
    from ns_common.vocab import build_vocab, write_vocab

    vocab = build_vocab(texts) if vocab is None else vocab
    os.makedirs(save_dir, exist_ok=True)
    write_vocab(vocab, os.path.join(save_dir, "vocab.txt"))
    if seed is not None:
        paddle.seed(seed)
    new_backbone(model_type, len(vocab), "mini", max_position_embeddings=max_position_embeddings, **sizes).save_pretrained(save_dir)
    new_tokenizer(model_type, os.path.join(save_dir, "vocab.txt")).save_pretrained(save_dir)
    return save_dir


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{"ernie": dir, "ernie-gram": dir}: tiny from-scratch backbones (128 positions) sharing one vocabulary,
    built from the recall sample's unsupervised texts and training queries. Only read."""
    from ns_common.io import read_corpus, read_text_pairs

    texts = read_corpus(sample_file("recall", "train_unsupervised.csv"))
    texts += [q for q, _ in read_text_pairs(sample_file("recall", "train.csv"))]
    root = tmp_path_factory.mktemp("tiny_models")
    return {model_type: make_tiny_model(str(root / model_type), model_type, texts, seed=7)
            for model_type in ("ernie", "ernie-gram")}


@pytest.fixture(scope="session")
def tiny_ernie(tiny_models):
    """The tiny ERNIE of tiny_models (the recall encoders' backbone)."""
    return tiny_models["ernie"]


@pytest.fixture(scope="session")
def tiny_ernie_gram(tiny_models):
    """The tiny ERNIE-Gram of tiny_models (the reranker's backbone)."""
    return tiny_models["ernie-gram"]


@pytest.fixture(scope="session")
def tiny_pretrain_models(tmp_path_factory):
    """{"ernie": dir, "ernie-gram": dir}: tiny from-scratch backbones (64 positions) sharing one vocabulary built
    from the pretraining sample (pretrain/domain_corpus.txt), which it covers without [UNK]. Only read."""
    with open(sample_file("pretrain", "domain_corpus.txt"), encoding="utf-8") as f:
        texts = f.read().splitlines()
    root = tmp_path_factory.mktemp("tiny_pretrain_models")
    # seeded: unseeded, the weights followed the process's random seed and the span-contrast test failed now and then
    return {model_type: make_tiny_model(str(root / model_type), model_type, texts, seed=7, max_position_embeddings=64)
            for model_type in ("ernie", "ernie-gram")}


def launch_two_processes(script, args, log_dir, timeout=300):
    """Runs `script` (a path from the repository root) with `args` in two CPU processes under
    paddle.distributed.launch; returns the finished process and its workers' logs, joined in name order."""
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(log_dir), script, *args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    logs = ""
    if os.path.isdir(log_dir):
        for name in sorted(os.listdir(log_dir)):
            with open(os.path.join(log_dir, name), errors="replace") as f:
                logs += f.read()
    return result, logs
