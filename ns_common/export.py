"""Static-graph export (paddle 3: inference.json + inference.pdiparams) shared by every stage."""

import os

import paddle

from ns_common.utils import logger


def export_static(model, output_path, input_names=("input_ids", "token_type_ids")):
    """Exports model.forward(input_ids, token_type_ids) with dynamic batch and sequence length."""
    model.eval()
    input_spec = [paddle.static.InputSpec(shape=[None, None], dtype="int64", name=name) for name in input_names]
    # paddle 3 needs full_graph=True for an input_spec export (no SOT fallback)
    static_model = paddle.jit.to_static(model, input_spec=input_spec, full_graph=True)
    prefix = os.path.join(output_path, "inference")
    os.makedirs(output_path, exist_ok=True)
    paddle.jit.save(static_model, prefix)
    logger.info(f"exported static graph to {prefix}.json / {prefix}.pdiparams")
    return prefix
