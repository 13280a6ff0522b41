"""Shared test set-up.

Components that the test command (`make test`) installs are required, never skipped quietly: a test that
needs one that is missing fails with one line naming it and how to get it, unless the user opted out with
its variable (SKIP_BROWSER=1, SKIP_MILVUS_SERVER=1); then the test is skipped and the run's summary says so.

Also the bundled sample's paths and the tiny from-scratch models most tests train or run (TINY: hidden 32,
one layer), built once a run (session scope) and only read: a test that trains saves into its own folder.
paddle and the project are imported inside the helpers, so tests that need neither do not pay for them.
"""

import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)

# component -> (what it is, opt-out variable, how to install it)
COMPONENTS = {
    "browser": (
        "Chromium",
        "SKIP_BROWSER",
        "`make test` or `bash scripts/setup_browser.sh` installs it (apt-get, root or sudo)",
    ),
    "milvus_server": (
        "the Milvus 2.3.5 server",
        "SKIP_MILVUS_SERVER",
        "`make test` or `bash scripts/setup_milvus_server.sh` installs it (pip milvus==2.3.5)",
    ),
}


def opted_out(component):
    variable = COMPONENTS[component][1]
    return os.environ.get(variable, "") not in ("", "0")


def require(component, problem):
    """Call where `component` turned out to be missing (problem: what is missing): skips the test when the
    user opted out, else fails it with one line."""
    name, variable, how = COMPONENTS[component]
    if opted_out(component):
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
    # read from the skip reports, not from a set require() fills: under xdist the tests run in worker processes
    reasons = " ".join(str(getattr(report, "longrepr", "")) for report in terminalreporter.stats.get("skipped", []))
    skipped = [
        f"{name} ({variable}={os.environ[variable]})"
        for name, variable, _ in COMPONENTS.values()
        if f"needs {name}: skipped on request" in reasons
    ]
    if skipped:
        terminalreporter.write_line(
            f"opted out of {', '.join(skipped)}: the tests that need it were skipped", yellow=True
        )


# ---------------------------------------------------------------- two workers: which files share one, in what order

# `make test` runs the suite in two pytest-xdist workers with --dist loadfile: each file runs whole in one worker, so
# its module fixtures are built once. Files that read the same costly session fixture form one unit (one worker
# builds it once), and the longest units go first, so that the two workers do not end on one long file.
SHARED_UNITS = {  # file -> the unit it runs in, with the other files reading the same session fixture
    "tests/test_web_service.py": "web_index",
    "tests/test_search_system.py": "web_index",
    "tests/test_living_index.py": "web_index",
}
LONGEST_FIRST = [  # minutes each on a quiet machine (docs/development.md#tests); every other file after these
    "tests/test_pipeline.py",
    "tests/test_pipeline_pretrained.py",
    *SHARED_UNITS,
    "tests/test_recipes.py",
    "tests/test_pretrained.py",
]


def pytest_collection_modifyitems(items):
    """The longest files first (LONGEST_FIRST), each file's tests in their own order; a stable sort, the same in
    every worker (xdist checks that they all collected the same list)."""

    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # optional: a hook of pytest-xdist; first: before xdist's own
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with the files of SHARED_UNITS grouped as one unit each and the units in the collection's
    order (not xdist's default of most tests first). xdist's own grouping (--dist loadgroup) does not group with
    pytest 9: it renames item._nodeid, which pytest 9 no longer reads."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            path = super()._split_scope(nodeid)
            return SHARED_UNITS.get(path, path)

    config.option.loadscopereorder = False
    return SharedFixtureScheduling(config, log)


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
    new_backbone(
        model_type, len(vocab), "mini", max_position_embeddings=max_position_embeddings, **sizes
    ).save_pretrained(save_dir)
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
    return {
        model_type: make_tiny_model(str(root / model_type), model_type, texts, seed=7)
        for model_type in ("ernie", "ernie-gram")
    }


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
    return {
        model_type: make_tiny_model(str(root / model_type), model_type, texts, seed=7, max_position_embeddings=64)
        for model_type in ("ernie", "ernie-gram")
    }


def launch_two_processes(script, args, log_dir, timeout=300):
    """Runs `script` (a path from the repository root) with `args` in two CPU processes under
    paddle.distributed.launch; returns the finished process (its output names a failed worker) and its workers'
    logs, joined in name order. A worker that crashes prints its Python stack there (PYTHONFAULTHANDLER)."""
    command = [
        sys.executable,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        "2",
        "--log_dir",
        str(log_dir),
        script,
        *args,
    ]
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    logs = ""
    if os.path.isdir(log_dir):
        for name in sorted(os.listdir(log_dir)):
            with open(os.path.join(log_dir, name), errors="replace") as f:
                logs += f.read()
    return result, logs


# ---------------------------------------------------------------- Milvus: nothing searches unflushed rows


class FlushCheckedClient:
    """Mixed into pymilvus' real MilvusClient for the whole test session (flush_guard): remembers the collections
    with writes (insert, upsert, delete) not yet flushed and fails any search, query or get of one of them, so a
    code path that searches before it flushes fails its test (milvus-lite 3.x searched unflushed rows ~30x
    slower; a server indexes only flushed segments)."""

    unflushed = set()  # (uri, collection)

    def _key(self, collection_name):
        return (self._ns_uri, collection_name)

    def _written(self, collection_name):
        FlushCheckedClient.unflushed.add(self._key(collection_name))

    def _check(self, what, collection_name):
        if self._key(collection_name) in FlushCheckedClient.unflushed:
            raise AssertionError(
                f"{what} over unflushed rows of collection {collection_name} at {self._ns_uri}: flush first"
            )


def _flush_checked(client_class):
    def guarded(name, kind):
        method = getattr(client_class, name)

        def call(self, collection_name, *args, **kwargs):
            if kind == "read":
                self._check(name, collection_name)
            result = method(self, collection_name, *args, **kwargs)
            if kind == "write":
                self._written(collection_name)
            elif kind == "clean":
                FlushCheckedClient.unflushed.discard(self._key(collection_name))
            return result

        return call

    def init(self, uri="", *args, **kwargs):
        client_class.__init__(self, uri, *args, **kwargs)
        self._ns_uri = uri if "://" in uri else os.path.abspath(uri)

    kinds = {
        "insert": "write",
        "upsert": "write",
        "delete": "write",
        "flush": "clean",
        "drop_collection": "clean",
        "search": "read",
        "hybrid_search": "read",
        "query": "read",
        "get": "read",
    }
    members = {name: guarded(name, kind) for name, kind in kinds.items()}
    return type("MilvusClient", (FlushCheckedClient, client_class), {"__init__": init, **members})


@pytest.fixture(scope="session", autouse=True)
def flush_guard():
    """Every MilvusClient the tests' own process creates checks that nothing searches unflushed rows."""
    import pymilvus

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pymilvus, "MilvusClient", _flush_checked(pymilvus.MilvusClient))
        yield FlushCheckedClient.unflushed


# ---------------------------------------------------------------- the web service as a process of its own


WEB_SERVICE_MODULE = "search.web_service"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningService:
    """`python -m <WEB_SERVICE_MODULE> ...` as a child process, its output in a log file."""

    def __init__(self, log_path, *flags):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "w", encoding="utf-8")
        command = [sys.executable, "-m", WEB_SERVICE_MODULE, "--port", str(self.port), *flags]
        self.process = subprocess.Popen(
            command, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1")
        )
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"web service exited with {self.process.returncode} while starting:\n{self.log_text()[-3000:]}"
                )
            try:
                if request(self.port, "GET", "/api/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        pytest.fail(f"web service not up after 180 s:\n{self.log_text()[-3000:]}")

    def log_text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM, as a process manager would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def request(port, method, path, body=None, raw=None):
    """-> (status, parsed JSON or text, headers) over a fresh loopback connection (no proxy)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        data = raw if raw is not None else (json.dumps(body, ensure_ascii=False).encode() if body is not None else None)
        connection.request(
            method, path, body=data, headers={"Content-Type": "application/json"} if data is not None else {}
        )
        response = connection.getresponse()
        text = response.read().decode("utf-8")
        content_type = response.getheader("content-type", "")
        return response.status, json.loads(text) if "json" in content_type else text, dict(response.getheaders())
    finally:
        connection.close()


def assert_clean_log(text):
    bad = [line for line in text.splitlines() if re.search(r"\bERROR\b|Traceback|Exception", line)]
    assert not bad, "errors in the service log:\n" + "\n".join(bad[:10])


# ---------------------------------------------------------------- the sample's indexes, built once a session


@pytest.fixture(scope="session")
def papers_pipeline(tmp_path_factory):
    """A pipeline-shaped directory (what SearchSystem.from_pipeline reads) with no model: the sample's 500 paper
    records in Milvus Lite at <dir>/milvus/neural_search.db, with random unit vectors (only BM25 and the stored
    vectors are searched). Built once a session in seconds, only read (tests/test_search_api.py,
    tests/test_api_errors.py): a test that writes copies it."""
    import numpy as np

    from recall.milvus import insert

    root = tmp_path_factory.mktemp("papers_pipeline")
    papers = sample_file("milvus", "papers.jsonl")
    with open(papers, encoding="utf-8") as f:
        n = len(f.read().splitlines())
    vectors = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    np.save(root / "emb.npy", vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    os.makedirs(root / "milvus")
    uri = str(root / "milvus" / "neural_search.db")
    assert insert.main(["--data_path", papers, "--embedding_path", str(root / "emb.npy"), "--uri", uri]) == n
    return str(root)


WEB_EMB_SIZE = 64
SAMPLE_CORPUS = os.path.join(SAMPLE, "milvus", "milvus_data.csv")
SAMPLE_PAPERS = os.path.join(SAMPLE, "milvus", "papers.jsonl")  # the same titles, line for line, with their fields


def spread_embeddings(encoder, tokenizer, texts):
    """Sets the projection's bias of an untrained recall encoder to minus the projected mean of its input over texts.
    A from-scratch encoder maps every text to nearly the same direction (cosines ~0.99), so rankings would hinge on
    float rounding; after this its embeddings spread out like a trained model's, and Milvus-versus-exact comparisons
    test the index, not rounding."""
    import paddle

    from ns_common.text import batch_encode

    encoder.eval()
    linear, pooled = encoder.emb_reduce_linear, []
    hook = linear.register_forward_pre_hook(lambda layer, inputs: pooled.append(inputs[0]))  # whatever the pooling
    with paddle.no_grad():
        encoder(*[paddle.to_tensor(a) for a in batch_encode(texts, tokenizer, 64)])
        linear.bias.set_value(-paddle.matmul(pooled[0].mean(axis=0, keepdim=True), linear.weight)[0])
    hook.remove()


def build_models_and_index(root):
    """Bootstrap -> exported recall encoder + exported reranker -> embeddings -> Milvus Lite index of the paper
    records -> a ranking fitted on it (lexical tier). Returns the paths; the index is also copied (milvus_rerank.db,
    milvus_guard.db, milvus_served.db) for services in processes of their own (Milvus Lite: one process per .db)."""
    import paddle

    from ernie_matching import export_model as export_reranker
    from ernie_matching.model import load_matching_model
    from ns_common import bootstrap
    from ns_common.semantic import load_encoder
    from ns_common.semantic_tools import export_encoder
    from ns_common.utils import quiet_paddlenlp, set_seed
    from recall.milvus import feature_extract, insert
    from search import fit

    quiet_paddlenlp()
    paths = {
        name: os.path.join(root, name)
        for name in (
            "bootstrap",
            "recall_export",
            "reranker_ckpt",
            "reranker_export",
            "embeddings",
            "milvus.db",
            "milvus_rerank.db",
            "milvus_guard.db",
            "milvus_served.db",
            "ranking",
        )
    }
    corpus_files = [
        os.path.join(SAMPLE, "recall", "train_unsupervised.csv"),
        os.path.join(SAMPLE, "recall", "train.csv"),
    ]
    bootstrap.main(
        ["--corpus_files", *corpus_files, "--model_type", "both", "--preset", "mini", "--save_dir", paths["bootstrap"]]
    )
    set_seed(1000)
    encoder, tokenizer = load_encoder(os.path.join(paths["bootstrap"], "ernie"), output_emb_size=WEB_EMB_SIZE)
    with open(SAMPLE_CORPUS, encoding="utf-8") as f:
        spread_embeddings(encoder, tokenizer, f.read().splitlines())
    export_encoder(encoder, tokenizer, paths["recall_export"])

    gram_dir = os.path.join(paths["bootstrap"], "ernie-gram")
    reranker, _ = load_matching_model(gram_dir)  # untrained: its scores are arbitrary but deterministic
    os.makedirs(paths["reranker_ckpt"])
    paddle.save(reranker.state_dict(), os.path.join(paths["reranker_ckpt"], "model_state.pdparams"))
    export_reranker.main(
        [
            "--params_path",
            paths["reranker_ckpt"],
            "--model_name_or_path",
            gram_dir,
            "--output_path",
            paths["reranker_export"],
        ]
    )

    feature_extract.main(
        ["--model_dir", paths["recall_export"], "--corpus_file", SAMPLE_CORPUS, "--output_path", paths["embeddings"]]
    )
    insert.main(
        [
            "--data_path",
            SAMPLE_PAPERS,
            "--embedding_path",
            os.path.join(paths["embeddings"], "corpus_embedding.npy"),
            "--uri",
            paths["milvus.db"],
            "--primary_key",  # tests/test_web_service.py names papers by line (by paper id: test_living_index.py)
            "line",
        ]
    )
    # as tests/test_search_system.py: the lexical tier on the training queries, so mode system explains its scores
    fit.main(
        [
            "--train_file",
            os.path.join(SAMPLE, "recall", "train.csv"),
            "--corpus_file",
            SAMPLE_CORPUS,
            "--output_dir",
            paths["ranking"],
            "--uri",
            paths["milvus.db"],
            "--folds",
            "3",
        ]
    )
    shutil.copy(paths["milvus.db"], paths["milvus_rerank.db"])  # Milvus Lite: one process per .db
    shutil.copy(paths["milvus.db"], paths["milvus_guard.db"])  # the service with short connection timeouts
    shutil.copy(paths["milvus.db"], paths["milvus_served.db"])  # the service as a process of its own
    return paths


@pytest.fixture(scope="session")
def web_index(tmp_path_factory):
    """The bundled sample's 500 paper records in Milvus Lite with a from-scratch recall model's vectors, an untrained
    exported reranker and a ranking fitted on the sample's training queries (build_models_and_index): built once a
    session for tests/test_web_service.py and tests/test_search_system.py, only read (a test that writes copies it)."""
    if not os.path.isfile(SAMPLE_CORPUS):
        pytest.skip(f"bundled sample missing: {SAMPLE_CORPUS}")
    return build_models_and_index(str(tmp_path_factory.mktemp("web_index")))


@pytest.fixture
def warnings_logged():
    """The warnings of the project's logger (it does not propagate to the root logger), as a list of texts."""
    from ns_common.utils import logger

    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
