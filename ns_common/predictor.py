"""Paddle Inference predictor over an exported model directory (inference.json/.pdiparams), used by
recall deployment, feature extraction, the reranker and the web service.

The fast path is the default on CPU: oneDNN kernels (with a cache of compiled kernels per input shape, as
texts vary in length), IR optimisation, one math thread per core this process may use (at
most 8). fp32 by default: its outputs equal the dynamic graph's within 1e-5 (tests/test_speed_paths.py);
bf16 (--precision bf16, CPUs with AVX512-BF16/AMX) is faster but differs by ~1e-3. --no-enable_mkldnn
turns oneDNN off (Paddle's plain CPU kernels)."""

import argparse
import os
import time

import numpy as np

from ns_common.cli import positive_int, str_to_bool
from ns_common.errors import ConfigError
from ns_common.text import batch_encode, with_role

MAX_DEFAULT_THREADS = 8
ONEDNN_SHAPE_CACHE = 64  # input shapes whose oneDNN kernels are kept (query lengths x batch sizes seen)
PRECISIONS = ("fp32", "bf16")
# a recall export's second graph, for queries alone: the encoder with some layers left out (export_model.py
# --query_drop_layers); the documents' vectors come from the whole model in the export's own directory
QUERY_GRAPH = "query"


def query_graph_dir(model_dir) -> str | None:
    """The export's query graph directory (QUERY_GRAPH), or None when queries go through the whole model."""
    path = os.path.join(model_dir, QUERY_GRAPH)
    return path if os.path.isfile(os.path.join(path, "inference.json")) else None


def default_cpu_threads():
    """Cores this process may run on (its CPU affinity), at most MAX_DEFAULT_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def add_inference_args(parser):
    """--cpu_threads, --enable_mkldnn / --no-enable_mkldnn (also --enable_mkldnn false) and --precision."""
    parser.add_argument(
        "--cpu_threads",
        type=positive_int,
        default=None,
        help=f"Paddle Inference CPU math threads (default: the cores this process may use, at most {MAX_DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--enable_mkldnn",
        type=str_to_bool,
        nargs="?",
        const=True,
        default=True,
        help="oneDNN kernels for Paddle Inference on CPU (default: on; --no-enable_mkldnn or --enable_mkldnn false: off)",
    )
    parser.add_argument("--no-enable_mkldnn", dest="enable_mkldnn", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="bf16: oneDNN bfloat16 kernels (faster on CPUs with AVX512-BF16, outputs differ by ~1e-3)",
    )
    return parser


class InferencePredictor:
    def __init__(self, model_dir, device="cpu", cpu_threads=None, enable_mkldnn=True, precision="fp32"):
        import paddle.inference as paddle_infer

        model_file = os.path.join(model_dir, "inference.json")
        params_file = os.path.join(model_dir, "inference.pdiparams")
        if not os.path.isfile(model_file):
            model_file = os.path.join(model_dir, "inference.pdmodel")  # paddle 2.x exports
        if not (os.path.isfile(model_file) and os.path.isfile(params_file)):
            raise ConfigError(
                f"--model_dir {model_dir}: no exported model (inference.json + inference.pdiparams); run the "
                f"stage's export_model.py first"
            )
        if precision not in PRECISIONS:
            raise ConfigError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
        if precision == "bf16" and not enable_mkldnn:
            raise ConfigError("--precision bf16 needs oneDNN (drop --no-enable_mkldnn)")
        config = paddle_infer.Config(model_file, params_file)
        if device.startswith("gpu"):
            config.enable_use_gpu(100, int(device.split(":")[1]) if ":" in device else 0)
            self.settings = f"Paddle Inference on {device}"
        else:
            config.disable_gpu()
            cpu_threads = cpu_threads or default_cpu_threads()
            config.set_cpu_math_library_num_threads(cpu_threads)
            if enable_mkldnn:
                config.enable_mkldnn()
                config.set_mkldnn_cache_capacity(ONEDNN_SHAPE_CACHE)
                if precision == "bf16":
                    config.enable_mkldnn_bfloat16()
            else:
                config.disable_mkldnn()
            self.settings = (
                f"Paddle Inference on CPU, {cpu_threads} thread{'s' if cpu_threads > 1 else ''}, "
                f"{'oneDNN ' + precision if enable_mkldnn else 'no oneDNN'}"
            )
        config.switch_ir_optim(
            True
        )  # (enable_memory_optim() fails on PIR graphs in Paddle 3.3: "memory_optimize_pass")
        config.switch_use_feed_fetch_ops(False)
        config.disable_glog_info()
        self.predictor = paddle_infer.create_predictor(config)
        self.input_handles = [self.predictor.get_input_handle(n) for n in self.predictor.get_input_names()]
        self.output_handle = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self.model_dir = model_dir

    def run(self, *arrays):
        for handle, array in zip(self.input_handles, arrays):
            handle.copy_from_cpu(np.ascontiguousarray(array))
        self.predictor.run()
        return self.output_handle.copy_to_cpu()

    def encode(self, texts, tokenizer, max_seq_length=64, batch_size=64, text_pairs=None, progress=False, role=None):
        """Runs texts (or text pairs) through the exported model in batches; returns stacked outputs. role: "query" or
        "doc" for a model trained with prefixes (ns_common.text.with_role)."""
        texts = with_role(texts, tokenizer, role)
        pairs = list(text_pairs) if text_pairs is not None else None
        outputs = []
        starts = range(0, len(texts), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="inference", unit="batch")
        t0 = time.time()
        for start in starts:
            chunk = texts[start : start + batch_size]
            chunk_pairs = pairs[start : start + batch_size] if pairs is not None else None
            input_ids, token_type_ids = batch_encode(chunk, tokenizer, max_seq_length, chunk_pairs)
            outputs.append(self.run(input_ids, token_type_ids))
        self.last_throughput = len(texts) / max(time.time() - t0, 1e-9)
        return np.concatenate(outputs, axis=0) if outputs else np.zeros((0,), dtype=np.float32)
