"""The model factory: one place that knows the two backbone architectures (ERNIE, ERNIE-Gram),
their presets for from-scratch models, and how to load a PaddleNLP name or a local directory."""

import json
import os

from ns_common.errors import ConfigError
from ns_common.utils import quiet_paddlenlp

# Small configurations for offline, from-scratch models (they are a starting point for domain
# pretraining, not pretrained models). "base" is ernie-1.0's shape, for users with a GPU.
PRESETS = {
    "mini": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
MODEL_TYPES = ("ernie", "ernie-gram")
# what save_pretrained writes (PaddleNLP 2.8: model_state.pdparams; sharded or safetensors variants too)
WEIGHT_FILES = (
    "model_state.pdparams",
    "model_state.pdparams.index.json",
    "model.safetensors",
    "model.safetensors.index.json",
)


def _classes(model_type):
    quiet_paddlenlp()
    from paddlenlp.transformers import (
        ErnieConfig,
        ErnieGramConfig,
        ErnieGramModel,
        ErnieGramTokenizer,
        ErnieModel,
        ErnieTokenizer,
    )

    if model_type == "ernie":
        return ErnieConfig, ErnieModel, ErnieTokenizer
    if model_type == "ernie-gram":
        return ErnieGramConfig, ErnieGramModel, ErnieGramTokenizer
    raise ValueError(f"unknown model type {model_type!r} (expected one of {', '.join(MODEL_TYPES)})")


def model_type_of(name_or_path):
    """'ernie' or 'ernie-gram', from a local directory's config.json or from a PaddleNLP model name."""
    config_file = os.path.join(name_or_path, "config.json")
    if os.path.isdir(name_or_path):
        if not os.path.isfile(config_file):
            raise ConfigError(
                f"--model_name_or_path {name_or_path}: directory has no config.json (expected a save_pretrained directory)"
            )
        with open(config_file, encoding="utf-8") as f:
            model_type = json.load(f).get("model_type", "ernie")
        return "ernie-gram" if model_type in ("ernie_gram", "ernie-gram") else "ernie"
    return "ernie-gram" if name_or_path.startswith("ernie-gram") else "ernie"


def check_name_or_path(name_or_path):
    """A path-like value that does not exist is a typo, not a model name: say so before loading."""
    looks_like_path = os.sep in name_or_path or name_or_path.startswith(".")
    if looks_like_path and not os.path.isdir(name_or_path):
        raise ConfigError(
            f"--model_name_or_path {name_or_path}: no such directory (a PaddleNLP name such as ernie-1.0, or a "
            f"save_pretrained directory)"
        )


def load_backbone(name_or_path, **config_overrides):
    """ErnieModel or ErnieGramModel from a PaddleNLP name (downloads when online) or a local directory.
    config_overrides, e.g. hidden_dropout_prob=0.1, replace values of the saved config."""
    check_backbone(name_or_path)
    _, model_cls, _ = _classes(model_type_of(name_or_path))
    return model_cls.from_pretrained(name_or_path, **config_overrides)


def check_backbone(name_or_path, max_seq_length=None):
    """A local backbone directory must hold weights (an export dir does not) and, given max_seq_length,
    enough position embeddings for it: one-line errors before anything is loaded."""
    check_name_or_path(name_or_path)
    if not os.path.isdir(name_or_path):
        return
    if not any(os.path.isfile(os.path.join(name_or_path, f)) for f in WEIGHT_FILES):
        exported = os.path.isfile(os.path.join(name_or_path, "inference.pdiparams"))
        raise ConfigError(
            f"--model_name_or_path {name_or_path}: no backbone weights (model_state.pdparams)"
            + (
                "; it is an exported model (inference.json), which only serves predictions: give the save_pretrained "
                "directory it was trained from (bootstrap, domain-pretrained final/)"
                if exported
                else ""
            )
        )
    model_type_of(name_or_path)  # fails without config.json
    with open(os.path.join(name_or_path, "config.json"), encoding="utf-8") as f:
        positions = json.load(f).get("max_position_embeddings")
    if max_seq_length and positions and max_seq_length > positions:
        raise ConfigError(
            f"--max_seq_length {max_seq_length} exceeds the {positions} positions of --model_name_or_path {name_or_path}"
        )


def backbone_from_config(name_or_path, **config_overrides):
    """The architecture of a name or save_pretrained directory with fresh weights, for when a full
    checkpoint (--params_path) overwrites them anyway: skips loading weights twice."""
    check_name_or_path(name_or_path)
    config_cls, model_cls, _ = _classes(model_type_of(name_or_path))
    return model_cls(config_cls.from_pretrained(name_or_path, **config_overrides))


def load_tokenizer(name_or_path):
    """The directory's tokenizer: a converted pretrained encoder's SentencePiece one (pretrained/convert.py) when it
    holds sentencepiece.model, else the architecture's WordPiece tokenizer (ERNIE, ERNIE-Gram)."""
    check_name_or_path(name_or_path)
    from ns_common.sentencepiece_tokenizer import MODEL_FILE, SentencePieceTokenizer

    if os.path.isfile(os.path.join(name_or_path, MODEL_FILE)):
        return SentencePieceTokenizer.from_pretrained(name_or_path)
    _, _, tokenizer_cls = _classes(model_type_of(name_or_path))
    return tokenizer_cls.from_pretrained(name_or_path)


def new_backbone(model_type, vocab_size, preset="mini", max_position_embeddings=512, **overrides):
    """A randomly initialised backbone of a preset size."""
    config_cls, model_cls, _ = _classes(model_type)
    values = dict(
        PRESETS[preset],
        vocab_size=vocab_size,
        max_position_embeddings=max_position_embeddings,
        type_vocab_size=2,
        pad_token_id=0,
    )
    values.update(overrides)
    if model_type == "ernie-gram":
        # ErnieGramConfig needs both for small sizes (after the overrides: hidden_size may be one of them)
        values.setdefault("embedding_size", values["hidden_size"])
    return model_cls(config_cls(**values))


def new_tokenizer(model_type, vocab_file):
    _, _, tokenizer_cls = _classes(model_type)
    return tokenizer_cls(vocab_file)


def hidden_size_of(backbone):
    return backbone.config.hidden_size


def remaining_layers(num_layers, drop_layers, flag) -> list:
    """The layers (0-based, in order) of a num_layers-deep encoder that are left when drop_layers go. ConfigError,
    naming the flag, when a dropped layer is not in the encoder or none would be left."""
    outside = [i for i in drop_layers if i >= num_layers]
    if outside:
        raise ConfigError(f"{flag} {outside[0]}: the encoder has layers 0-{num_layers - 1}")
    left = [i for i in range(num_layers) if i not in set(drop_layers)]
    if not left:
        raise ConfigError(f"{flag} leaves none of the encoder's {num_layers} layers")
    return left
