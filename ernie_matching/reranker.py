"""The reranker as a library: score (query, title) pairs and reorder recalled candidates.

    from ernie_matching.reranker import Reranker
    reranker = Reranker(model_dir="output/ernie_matching")            # exported model (Paddle Inference)
    reranker = Reranker(params_path="checkpoints/ernie_matching/model_best")   # or a training checkpoint
    top = reranker.rerank("中西方语言 文化差异", [{"id": 3, "text": "...", "score": 0.71}, ...], top_k=10)
    # -> the candidates sorted by rerank_score (best first), each with its recall `score` and `recall_rank` kept

Speed: pairs are scored in batches sorted by length (little padding), and each distinct text is
tokenised once (an LRU cache), so a corpus title recalled for many queries costs one tokenisation.
`pairs_per_s` reports the throughput of everything scored so far.
"""

import os
import time

import numpy as np
import paddle

from ernie_matching.data import PairEncoder
from ernie_matching.model import load_matching_model, read_mark_matches
from ns_common.errors import ConfigError, ModelMismatchError
from ns_common.io import check_max_seq_length
from ns_common.modeling import load_tokenizer
from ns_common.predictor import InferencePredictor, add_inference_args
from ns_common.text import batches
from ns_common.utils import set_device


class Reranker:
    def __init__(
        self,
        model_dir=None,
        params_path=None,
        model_name_or_path=None,
        device="cpu",
        max_seq_length=64,
        batch_size=64,
        cpu_threads=None,
        enable_mkldnn=True,
        cache_size=200_000,
        precision="fp32",
    ):
        """model_dir: an export_model.py directory (inference.json/.pdiparams + tokenizer + config.json), used
        with Paddle Inference; otherwise params_path (a train_pairwise.py checkpoint) with the dynamic graph,
        its backbone from model_name_or_path or, when omitted, from the checkpoint directory itself."""
        check_max_seq_length(max_seq_length, model_dir, params_path, model_name_or_path)  # before anything loads
        if model_dir:
            self.predictor = InferencePredictor(
                model_dir, device=device, cpu_threads=cpu_threads, enable_mkldnn=enable_mkldnn, precision=precision
            )
            self.model = None
            tokenizer = load_tokenizer(model_dir)
            mark_matches = read_mark_matches(model_dir)
        else:
            set_device(device)
            self.predictor = None
            self.model, tokenizer = load_matching_model(model_name_or_path, params_path)
            self.model.eval()
            mark_matches = self.model.mark_matches
        self.encoder = PairEncoder(tokenizer, max_seq_length, cache_size, mark_matches=mark_matches)
        self.batch_size = batch_size
        self.pairs_scored = 0
        self.seconds = 0.0
        self.check_model(model_dir or params_path)

    @classmethod
    def from_dir(
        cls,
        directory,
        device="cpu",
        max_seq_length=64,
        batch_size=64,
        cpu_threads=None,
        enable_mkldnn=True,
        precision="fp32",
    ) -> "Reranker":
        """The one loader of a reranker directory: an export of export_model.py (inference.json: Paddle Inference)
        or a train_pairwise.py checkpoint directory (model_state.pdparams: the dynamic graph); anything else is a
        one-line error naming the directory."""
        kind = reranker_kind(directory)
        if kind == "exported":
            return cls(
                model_dir=directory,
                device=device,
                max_seq_length=max_seq_length,
                batch_size=batch_size,
                cpu_threads=cpu_threads,
                enable_mkldnn=enable_mkldnn,
                precision=precision,
            )
        return cls(params_path=directory, device=device, max_seq_length=max_seq_length, batch_size=batch_size)

    @classmethod
    def from_reranker_dir(cls, args) -> "Reranker":
        """from_dir with a search command's flags: --reranker_dir, --device, --max_seq_length and the inference flags."""
        return cls.from_dir(
            args.reranker_dir,
            device=args.device,
            max_seq_length=args.max_seq_length,
            cpu_threads=args.cpu_threads,
            enable_mkldnn=args.enable_mkldnn,
            precision=args.precision,
        )

    @classmethod
    def from_args(cls, args) -> "Reranker":
        """The reranker of a command line's add_reranker_args flags (--params_path / --model_name_or_path optional)."""
        return cls(
            args.model_dir,
            getattr(args, "params_path", None),
            getattr(args, "model_name_or_path", None),
            device=args.device,
            max_seq_length=args.max_seq_length,
            batch_size=args.batch_size,
            cpu_threads=args.cpu_threads,
            enable_mkldnn=args.enable_mkldnn,
            precision=args.precision,
        )

    def check_model(self, source) -> None:
        """One pair must give one probability: another model (e.g. the recall model's export, one vector a
        text) is a one-line error when it is loaded, not a failure of every later request."""
        input_ids, token_type_ids = self.encoder.encode_batch(["查询"], ["标题"])
        try:
            out = np.asarray(self._probabilities(input_ids, token_type_ids))
        except Exception as e:  # noqa: BLE001 - any model that cannot score a pair is the wrong one
            raise ModelMismatchError(  # noqa: B904
                f"{source}: cannot score a query/title pair ({type(e).__name__}); is it a reranker "
                f"(ernie_matching/export_model.py)?"
            )
        if out.size != 1 or not 0 <= float(out.reshape(-1)[0]) <= 1:
            raise ModelMismatchError(
                f"{source}: gives {out.size} values for one query/title pair, not one probability: "
                "is it a reranker (ernie_matching/export_model.py), not the recall model?"
            )

    @property
    def pairs_per_s(self) -> float:
        return self.pairs_scored / max(self.seconds, 1e-9)

    def _probabilities(self, input_ids, token_type_ids):
        if self.predictor is not None:
            return self.predictor.run(input_ids, token_type_ids).reshape(-1)
        with paddle.no_grad():
            return self.model(paddle.to_tensor(input_ids), paddle.to_tensor(token_type_ids)).numpy().reshape(-1)

    def score_pairs(self, queries, titles) -> np.ndarray:
        """Relevance probabilities (float32 array) of (queries[i], titles[i]), in input order."""
        if len(queries) != len(titles):
            raise ValueError(f"{len(queries)} queries for {len(titles)} titles")
        start = time.time()
        encoded = [self.encoder.encode(q, t) for q, t in zip(queries, titles)]
        # batches of similar length pad less; results go back to input order
        order = np.argsort([len(ids) for ids, _ in encoded], kind="stable")
        probs = np.zeros(len(encoded), dtype=np.float32)
        for chunk in batches(order, self.batch_size):
            input_ids, token_type_ids = self.encoder.pad([encoded[i] for i in chunk])
            probs[chunk] = self._probabilities(input_ids, token_type_ids)
        self.pairs_scored += len(encoded)
        self.seconds += time.time() - start
        return probs

    def score(self, query, titles) -> np.ndarray:
        """Relevance probabilities of each title for one query."""
        return self.score_pairs([query] * len(titles), list(titles))

    def rerank(self, query, candidates, top_k=None) -> list:
        """candidates: dicts with at least `text` (plus e.g. `id` and the recall `score`), in recall order.
        Returns the top_k (all when None) as new dicts with `rerank_score` and `recall_rank` (1-based) added,
        best first; equal rerank scores keep the recall order."""
        probs = self.score(query, [c["text"] for c in candidates])
        reranked = [
            dict(c, rerank_score=float(p), recall_rank=rank)
            for rank, (c, p) in enumerate(zip(candidates, probs), start=1)
        ]
        reranked.sort(key=lambda c: -c["rerank_score"])  # stable: ties stay in recall order
        return reranked[:top_k] if top_k else reranked


def reranker_kind(directory) -> str:
    """ "exported" (inference.json / inference.pdmodel: Paddle Inference) or "checkpoint" (model_state.pdparams);
    a one-line error for anything else."""
    if not directory or not os.path.isdir(directory):
        raise ConfigError(f"--reranker_dir {directory}: no such directory")
    if any(os.path.isfile(os.path.join(directory, f)) for f in ("inference.json", "inference.pdmodel")):
        return "exported"
    if os.path.isfile(os.path.join(directory, "model_state.pdparams")):
        return "checkpoint"
    raise ConfigError(
        f"--reranker_dir {directory}: neither an exported reranker (inference.json) nor a checkpoint "
        "(model_state.pdparams); run ernie_matching/export_model.py, or give ernie_matching's checkpoint directory"
    )


def add_reranker_args(parser, batch_size=64):
    """The flags every command that loads a reranker takes (an exported dir or a checkpoint)."""
    parser.add_argument("--model_dir", default=None, help="reranker exported by export_model.py (Paddle Inference)")
    parser.add_argument(
        "--params_path", default=None, help="or a train_pairwise.py checkpoint (model_state.pdparams or its directory)"
    )
    parser.add_argument(
        "--model_name_or_path", default=None, help="backbone of --params_path (default: the checkpoint directory)"
    )
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=batch_size)
    parser.add_argument("--device", default="cpu")
    add_inference_args(parser)  # --cpu_threads, --enable_mkldnn (default on) / --no-enable_mkldnn, --precision


def check_reranker_args(args):
    if not (args.model_dir or args.params_path):
        raise ConfigError("give --model_dir (an exported reranker) or --params_path (a reranker checkpoint)")
