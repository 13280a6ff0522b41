"""Paddle Inference predictor over an exported model directory (inference.json/.pdiparams), used by
recall deployment, feature extraction, the reranker and the web service."""
import os
import time

import numpy as np

from ns_common.text import batch_encode, batches
from ns_common.utils import fail, logger


class InferencePredictor:
    def __init__(self, model_dir, device="cpu", cpu_threads=2, enable_mkldnn=False, precision="fp32"):
        import paddle.inference as paddle_infer

        model_file = os.path.join(model_dir, "inference.json")
        params_file = os.path.join(model_dir, "inference.pdiparams")
        if not os.path.isfile(model_file):
            model_file = os.path.join(model_dir, "inference.pdmodel")  # paddle 2.x exports
        if not (os.path.isfile(model_file) and os.path.isfile(params_file)):
            fail(f"--model_dir {model_dir}: no exported model (inference.json + inference.pdiparams); run the stage's export_model.py first")
        config = paddle_infer.Config(model_file, params_file)
        if device.startswith("gpu"):
            config.enable_use_gpu(100, int(device.split(":")[1]) if ":" in device else 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_threads)
            if enable_mkldnn:
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
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

    def encode(self, texts, tokenizer, max_seq_length=64, batch_size=64, text_pairs=None, progress=False):
        """Runs texts (or text pairs) through the exported model in batches; returns stacked outputs."""
        texts = list(texts)
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
