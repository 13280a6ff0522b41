"""The text encoder of the Milvus stage: texts -> L2-normalised embeddings, either through the exported
Paddle Inference model (--model_dir, the deployment path) or the dynamic graph of a checkpoint
(--params_path + --model_name_or_path). Feature extraction and queries must use the same one; an export may hold
a second graph for queries alone (export_model.py --query_drop_layers: the same encoder without some layers, faster),
which encode(role="query") runs while documents go through the whole model."""

import argparse
import os
import time

import numpy as np

from ns_common.cli import device_flag
from ns_common.errors import ConfigError, ModelMismatchError
from ns_common.utils import logger, quiet_paddlenlp

PROBE_TEXT = "中西方语言与文化的差异"  # embedded to tell two models apart whatever files hold their weights
PROBE_DIMS = 32


def add_model_args(parser, batch_size=64) -> argparse.ArgumentParser:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model_dir",
        default=None,
        help="exported model (inference.json + inference.pdiparams, tokenizer files alongside)",
    )
    group.add_argument(
        "--model_name_or_path",
        default=None,
        help="tokenizer (and, with --params_path, backbone) when --model_dir holds no tokenizer files",
    )
    group.add_argument(
        "--params_path", default=None, help="dynamic-graph checkpoint (model_state.pdparams) instead of --model_dir"
    )
    group.add_argument(
        "--output_emb_size",
        type=int,
        default=None,
        help="with --params_path: the model's output_emb_size (default: read from the checkpoint)",
    )
    group.add_argument("--max_seq_length", type=int, default=64, help="tokens per text (longer texts are cut)")
    group.add_argument("--batch_size", type=int, default=batch_size, help="texts per forward pass")
    group.add_argument("--device", type=device_flag, default="cpu", help="cpu, gpu or gpu:N")
    from ns_common.predictor import add_inference_args

    add_inference_args(group)  # --cpu_threads, --enable_mkldnn (default on) / --no-enable_mkldnn, --precision
    return parser


def check_model_args(args) -> None:
    """Flag checks that need no model loading (call before anything slow)."""
    if not args.model_dir and not args.params_path:
        raise ConfigError("give the model: --model_dir (exported model) or --params_path with --model_name_or_path")
    if args.model_dir and args.params_path:
        raise ConfigError("--model_dir and --params_path are alternatives: give one")
    if args.model_dir and not os.path.isdir(args.model_dir):
        raise ConfigError(f"--model_dir {args.model_dir}: no such directory")
    if args.params_path and not args.model_name_or_path:
        raise ConfigError("--params_path needs --model_name_or_path (the backbone the checkpoint was trained from)")
    if args.max_seq_length < 3 or args.batch_size < 1:
        raise ConfigError("--max_seq_length must be at least 3 and --batch_size at least 1")


def load_tokenizer_for(model_dir, model_name_or_path=None):
    """The tokenizer of --model_name_or_path when given, else the one saved in the exported model dir."""
    quiet_paddlenlp()
    if model_name_or_path:
        from ns_common.modeling import load_tokenizer

        return load_tokenizer(model_name_or_path)
    if not os.path.isfile(os.path.join(model_dir, "tokenizer_config.json")):
        raise ConfigError(
            f"--model_dir {model_dir} holds no tokenizer files (tokenizer_config.json, vocab.txt): "
            "pass --model_name_or_path with the tokenizer the model was trained with"
        )
    from ns_common.sentencepiece_tokenizer import MODEL_FILE, SentencePieceTokenizer

    if os.path.isfile(os.path.join(model_dir, MODEL_FILE)):  # a converted pretrained encoder's (pretrained/convert.py)
        return SentencePieceTokenizer.from_pretrained(model_dir)
    from paddlenlp.transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


class TextEncoder:
    def __init__(
        self,
        model_dir=None,
        model_name_or_path=None,
        params_path=None,
        output_emb_size=None,
        max_seq_length=64,
        batch_size=64,
        device="cpu",
        cpu_threads=None,
        enable_mkldnn=True,
        precision="fp32",
    ):
        from ns_common.io import check_max_seq_length

        check_max_seq_length(max_seq_length, model_dir, params_path, model_name_or_path)  # before anything loads
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.kind = "inference" if model_dir else "dynamic"
        self.source = f"--model_dir {model_dir}" if model_dir else f"--params_path {params_path}"
        self.query_graph = None
        if model_dir:
            from ns_common.predictor import InferencePredictor, query_graph_dir

            self.tokenizer = load_tokenizer_for(model_dir, model_name_or_path)
            self.predictor = InferencePredictor(model_dir, device, cpu_threads, enable_mkldnn, precision)
            # an export with a query graph (export_model.py --query_drop_layers): queries go through it, documents
            # through the whole model
            self.query_graph = query_graph_dir(model_dir)
            self.query_predictor = (
                InferencePredictor(self.query_graph, device, cpu_threads, enable_mkldnn, precision)
                if self.query_graph
                else self.predictor
            )
        else:
            from ns_common.semantic import load_encoder
            from ns_common.utils import set_device

            set_device(device)
            self.model, self.tokenizer = load_encoder(model_name_or_path, params_path, output_emb_size)
            self.model.eval()
        self._dim = None
        self._weights = model_dir or params_path
        self._fingerprint = False

    @property
    def fingerprint(self) -> str | None:
        """sha1 of the weights (ns_common.io.weights_fingerprint), computed once: which model made a collection's vectors."""
        if self._fingerprint is False:
            from ns_common.io import weights_fingerprint

            self._fingerprint = weights_fingerprint(self._weights)
        return self._fingerprint

    @property
    def probe(self) -> list:
        """The first PROBE_DIMS components of the embedding of PROBE_TEXT: the same model gives the same numbers as an
        export (inference.pdiparams) or a checkpoint (model_state.pdparams), whose weights files differ."""
        if getattr(self, "_probe", None) is None:
            self._probe = [round(float(x), 5) for x in self.encode([PROBE_TEXT], role="doc")[0][:PROBE_DIMS]]
        return self._probe

    @classmethod
    def from_args(cls, args) -> "TextEncoder":
        return cls(
            args.model_dir,
            args.model_name_or_path,
            args.params_path,
            args.output_emb_size,
            args.max_seq_length,
            args.batch_size,
            args.device,
            args.cpu_threads,
            args.enable_mkldnn,
            getattr(args, "precision", "fp32"),
        )

    def encode(self, texts, role="query") -> np.ndarray:
        """float32 [len(texts), dim]; rows are L2-normalised by the model itself. role: "query" (the default: what is
        searched with) or "doc" (what is indexed), for a model trained with a prefix for each."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "inference":
            # batches of similar length pad less (embed_texts does the same for the dynamic graph)
            order = np.argsort([len(t) for t in texts], kind="stable")
            predictor = self.query_predictor if role == "query" else self.predictor
            ordered = predictor.encode(
                [texts[i] for i in order], self.tokenizer, self.max_seq_length, self.batch_size, role=role
            )
            vectors = np.empty_like(ordered)
            vectors[order] = ordered
        else:
            from ns_common.semantic import embed_texts

            vectors = embed_texts(self.model, self.tokenizer, texts, self.max_seq_length, self.batch_size, role=role)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def warm_up(self, longest=None) -> int:
        """Runs a text of each token length from 3 to `longest` (default: max_seq_length; at most the oneDNN shape
        cache holds) through the exported model, one at a time: oneDNN builds its kernels for an input shape on the
        first call with it (tens of ms for the 12-layer encoder), so a service pays that at start instead of on its
        users' first query of each length (through the query graph where the export has one). Returns the lengths run
        (0 for the dynamic graph, which has no such cache)."""
        if self.kind != "inference":
            return 0
        from ns_common.predictor import ONEDNN_SHAPE_CACHE

        longest = min(longest or self.max_seq_length, ONEDNN_SHAPE_CACHE)
        token = self.tokenizer.cls_token_id  # any id but padding (the pooling leaves padding out)
        for length in range(3, longest + 1):
            input_ids = np.full((1, length), token, dtype=np.int64)
            self.query_predictor.run(input_ids, np.zeros_like(input_ids))
        return max(longest - 2, 0)

    @property
    def dim(self) -> int:
        if self._dim is None:
            vectors = self.encode(["维度"])
            if vectors.ndim != 2 or not np.isfinite(vectors).all():
                raise ModelMismatchError(
                    f"{self.source}: gives "
                    f"{'non-finite values' if vectors.ndim == 2 else f'output of shape {list(vectors.shape)}'} "
                    "for a text, not a [texts, dim] embedding: is it the recall model (not the reranker's export)?"
                )
            self._dim = int(vectors.shape[1])
        return self._dim

    def n_tokens(self, text) -> int:
        """Tokens the text takes with [CLS] and [SEP], before truncation (counted in its first
        CHARS_PER_TOKEN * max_seq_length characters: enough to tell that it is cut)."""
        from ns_common.text import clip_text

        return len(self.tokenizer.tokenize(clip_text(text, self.max_seq_length))) + 2

    def warn_if_truncated(self, texts, what="query") -> int:
        too_long = [t for t in texts if self.n_tokens(t) > self.max_seq_length]
        if too_long:
            logger.warning(
                f"{len(too_long)} {what}{'s' if len(too_long) > 1 else ''} longer than --max_seq_length "
                f"{self.max_seq_length} tokens, cut to the first {self.max_seq_length - 2} "
                f"(e.g. {too_long[0][:40]!r}, {self.n_tokens(too_long[0])} tokens)"
            )
        return len(too_long)


class TimedEncoder:
    """A TextEncoder that adds up the seconds spent in encode() (a request's "encode" step in the web service
    and the latency benchmark); reset `seconds` before a request."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.seconds = 0.0

    def encode(self, texts, role="query"):
        start = time.perf_counter()
        try:
            return self.encoder.encode(texts, role)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name):  # dim, max_seq_length, warn_if_truncated, ...
        return getattr(self.encoder, name)
