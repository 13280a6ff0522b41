"""Creates a from-scratch model directory (save_pretrained layout) for offline use.

    python -m ns_common.bootstrap --corpus_files data/sample/recall/train_unsupervised.csv \
        --model_type ernie --preset mini --save_dir output/bootstrap/ernie

The vocabulary is built from the corpus, the weights are random: this is a starting point for
domain pretraining, not a pretrained model.
"""

import argparse
import json
import os

from ns_common.cli import entry_point, fail
from ns_common.modeling import MODEL_TYPES, PRESETS, new_backbone, new_tokenizer
from ns_common.utils import logger, set_seed
from ns_common.vocab import build_vocab, write_vocab


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--corpus_files",
        nargs="+",
        required=True,
        help="text files, one text a line (or query<TAB>doc pairs: every field counts)",
    )
    parser.add_argument("--model_type", choices=MODEL_TYPES + ("both",), default="ernie")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="mini")
    parser.add_argument(
        "--save_dir",
        required=True,
        help="output directory; with --model_type both, <save_dir>/ernie and <save_dir>/ernie-gram",
    )
    parser.add_argument(
        "--min_freq", type=int, default=2, help="minimum count of a latin/digit word to enter the vocabulary"
    )
    parser.add_argument("--max_vocab_size", type=int, default=None)
    parser.add_argument("--max_position_embeddings", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1000)
    return parser.parse_args(argv)


def corpus_texts(files):
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                for field in line.rstrip("\n").split("\t"):
                    if field.strip() and field not in ("query", "title", "neg_title", "label"):
                        yield field


def bootstrap(model_type, vocab, preset, save_dir, max_position_embeddings=512):
    os.makedirs(save_dir, exist_ok=True)
    vocab_file = os.path.join(save_dir, "vocab.txt")
    write_vocab(vocab, vocab_file)
    tokenizer = new_tokenizer(model_type, vocab_file)
    model = new_backbone(model_type, len(vocab), preset, max_position_embeddings)
    model.save_pretrained(save_dir)
    tokenizer.save_pretrained(save_dir)
    with open(os.path.join(save_dir, "bootstrap.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"model_type": model_type, "preset": preset, "vocab_size": len(vocab), "pretrained": False}, f, indent=2
        )
    n_params = sum(p.numel().item() for p in model.parameters())
    logger.info(
        f"bootstrap {model_type} ({preset}): vocab {len(vocab)}, {n_params / 1e6:.2f}M parameters -> {save_dir}"
    )
    return save_dir


@entry_point
def main(argv=None):
    args = parse_args(argv)
    for path in args.corpus_files:
        if not os.path.isfile(path):
            fail(f"--corpus_files: file not found: {path}")
    set_seed(args.seed)
    vocab = build_vocab(corpus_texts(args.corpus_files), min_freq=args.min_freq, max_size=args.max_vocab_size)
    if args.model_type == "both":
        for model_type in MODEL_TYPES:
            bootstrap(
                model_type, vocab, args.preset, os.path.join(args.save_dir, model_type), args.max_position_embeddings
            )
    else:
        bootstrap(args.model_type, vocab, args.preset, args.save_dir, args.max_position_embeddings)


if __name__ == "__main__":
    main()
