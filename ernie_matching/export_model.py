"""Exports a reranker checkpoint to a static graph for Paddle Inference.

    python ernie_matching/export_model.py --params_path checkpoints/ernie_matching/model_best \
        --output_path output/ernie_matching

Writes inference.json + inference.pdiparams (inputs input_ids, token_type_ids [batch, seq], int64;
output the relevance probability [batch]) and the tokenizer files + backbone config.json +
encoder_config.json (exact-match token types or not), so the
directory alone is enough for `Reranker(model_dir=...)`, predict_pairwise.py and rerank_results.py.
"""

import argparse

from ernie_matching.model import load_matching_model
from ns_common.checkpoint import save_encoder_config
from ns_common.cli import entry_point, fail
from ns_common.export import export_static
from ns_common.utils import logger, quiet_paddlenlp, set_device


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--params_path", required=True, help="model_state.pdparams of train_pairwise.py, or its directory"
    )
    parser.add_argument(
        "--model_name_or_path",
        default=None,
        help="the backbone it was trained from (default: the checkpoint directory)",
    )
    parser.add_argument("--output_path", default="./output/ernie_matching", help="directory for the exported model")
    args = parser.parse_args(argv)
    if not args.output_path:
        fail("--output_path must not be empty")
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    quiet_paddlenlp()
    set_device("cpu")
    model, tokenizer = load_matching_model(args.model_name_or_path, args.params_path)
    model.eval()
    export_static(model, args.output_path)
    tokenizer.save_pretrained(args.output_path)
    model.ptm.config.save_pretrained(args.output_path)
    save_encoder_config(model, args.output_path)  # whether the pair encoder marks exact matches
    logger.info(
        f"exported reranker {args.params_path} -> {args.output_path} (inference.json/.pdiparams, tokenizer, config.json, encoder_config.json)"  # noqa: E501
    )


if __name__ == "__main__":
    main()
