"""Static-graph export (paddle 3: inference.json + inference.pdiparams) shared by every stage."""

import os

import paddle

from ns_common.utils import logger


def without_inference_dropout(model) -> int:
    """Sets to 0 the probability of every dropout that is the identity at inference ("upscale_in_train", paddle's
    default), so that the exported graph holds no dropout op: an eval-mode dropout is still exported as an op that
    copies its input, and on CPU each one also moves the tensor out of oneDNN's layout and back (37 of them in a
    12-layer encoder). The outputs are the same; returns how many were set."""
    removed = 0
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, paddle.nn.Dropout) and layer.mode == "upscale_in_train" and layer.p:
            layer.p, removed = 0.0, removed + 1
        elif isinstance(layer, paddle.nn.MultiHeadAttention) and layer.dropout:  # attention weights' dropout
            layer.dropout, removed = 0.0, removed + 1
    return removed


def export_static(model, output_path, input_names=("input_ids", "token_type_ids")):
    """Exports model.forward(input_ids, token_type_ids) with dynamic batch and sequence length, in eval mode and
    without its dropouts (without_inference_dropout: the model is changed in place)."""
    model.eval()
    without_inference_dropout(model)
    input_spec = [paddle.static.InputSpec(shape=[None, None], dtype="int64", name=name) for name in input_names]
    # paddle 3 needs full_graph=True for an input_spec export (no SOT fallback)
    static_model = paddle.jit.to_static(model, input_spec=input_spec, full_graph=True)
    prefix = os.path.join(output_path, "inference")
    os.makedirs(output_path, exist_ok=True)
    paddle.jit.save(static_model, prefix)
    logger.info(f"exported static graph to {prefix}.json / {prefix}.pdiparams")
    return prefix
