"""Checkpoints: saving and loading model_state.pdparams, and the encoder_config.json saved next to it.

A checkpoint directory is PaddleNLP's layout, model_state.pdparams + the tokenizer files, plus (for the
semantic encoder and the reranker) encoder_config.json: how to rebuild the model (pooling, projection size,
exact-match token types), so every tool that loads the checkpoint rebuilds the same model.
"""

import json
import os

import numpy as np
import paddle

from ns_common.errors import ConfigError, ModelMismatchError, NonFiniteError
from ns_common.utils import logger

ENCODER_CONFIG = "encoder_config.json"


def read_encoder_config(params_path):
    """The encoder_config.json saved next to a checkpoint, or {} (PaddleNLP checkpoints have none)."""
    folder = params_path if os.path.isdir(params_path) else os.path.dirname(params_path)
    path = os.path.join(folder, ENCODER_CONFIG)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_encoder_config(model, folder):
    with open(os.path.join(folder, ENCODER_CONFIG), "w", encoding="utf-8") as f:
        json.dump(model.encoder_config(), f, indent=2)


def checkpoint_file(params_path):
    """model_state.pdparams itself, or inside the directory given; a clear error when missing."""
    if os.path.isdir(params_path):
        params_path = os.path.join(params_path, "model_state.pdparams")
    if not os.path.isfile(params_path):
        raise ConfigError(f"checkpoint not found: {params_path}")
    return params_path


def load_checkpoint(model, params_path, state=None):
    """Loads model_state.pdparams (or a directory holding it) into model; fails fast on any mismatch.
    state: the already loaded state dict of params_path, if the caller has it."""
    params_path = checkpoint_file(params_path)
    if state is None:
        state = paddle.load(params_path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {list(state[k].shape)} vs {list(own[k].shape)}"
        for k in own
        if k in state and list(state[k].shape) != list(own[k].shape)
    ]
    if missing or mismatched:
        detail = f"missing {missing[:3]}" if missing else f"shape mismatch {mismatched[:2]}"
        raise ModelMismatchError(
            f"{params_path} does not fit the model ({detail}); check --model_name_or_path and --output_emb_size"
        )
    if unexpected:
        logger.warning(f"{params_path}: ignoring {len(unexpected)} unexpected keys, e.g. {unexpected[:3]}")
    model.set_state_dict(state)
    logger.info(f"loaded parameters from {params_path}")


def check_finite_weights(model, what):
    """Never saves a non-finite model: fails naming the first parameter with a NaN or infinity."""
    for name, value in model.state_dict().items():
        if not np.isfinite(value.numpy()).all():
            raise NonFiniteError(
                f"{what}: parameter {name} holds NaN/inf; nothing written (the last good checkpoints are kept)"
            )


def save_checkpoint(model, tokenizer, path, extra=None):
    """PaddleNLP's checkpoint layout: path/model_state.pdparams + the tokenizer files (+ extra JSON)."""
    check_finite_weights(model, path)
    os.makedirs(path, exist_ok=True)
    paddle.save(model.state_dict(), os.path.join(path, "model_state.pdparams"))
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    if hasattr(model, "encoder_config"):  # a semantic encoder or reranker: how to rebuild it
        save_encoder_config(model, path)
    if extra:
        with open(os.path.join(path, "checkpoint_info.json"), "w", encoding="utf-8") as f:
            json.dump(extra, f, indent=2, ensure_ascii=False)
    return path
