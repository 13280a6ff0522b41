"""PaddleNLP's `recall/milvus/inference.py`: embeds a few texts with the recall model, prints the embeddings'
shape and values, then searches each text's nearest documents in the Milvus collection (id, text, score).

    python recall/milvus/inference.py --model_name_or_path output/bootstrap/ernie \
        --params_path checkpoints/inbatch_negative/model_best [--text "..." --text ... | --input_file texts.txt] [--top_k 10]
    python recall/milvus/inference.py --model_dir output/pipeline/sample/export/recall --no_search   # embeddings only

PaddleNLP hard-codes params_path, output_emb_size, max_seq_length and one title in the script; here they are
flags with its names (--params_path with --model_name_or_path for the dynamic graph as in PaddleNLP, or
--model_dir for the exported model; --output_emb_size, --max_seq_length, --batch_size, --device), and without
--text / --input_file the script embeds PaddleNLP's title. Where Milvus is: recall/milvus/config.yml and its
flags (--uri, --collection, ...). A thin wrapper over recall.milvus.model.TextEncoder (feature_extract.py's
encoder) and MilvusSearcher.search_vectors; query.py is the full search command.
"""

import argparse

import numpy as np

from ns_common.cli import entry_point, fail
from ns_common.io import DataFileError, check_file, read_texts
from ns_common.utils import logger
from recall.milvus.config import add_config_args, load_config
from recall.milvus.model import TextEncoder, add_model_args, check_model_args
from recall.milvus.search import MilvusSearcher

# PaddleNLP's id2corpus
EXAMPLE_TEXT = "国有企业引入非国有资本对创新绩效的影响——基于制造业国有上市公司的经验证据"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--text", action="append", default=None, help="a text to embed and search (repeat the flag for more)"
    )
    parser.add_argument("--input_file", default=None, help="one text a line (added after the --text ones)")
    parser.add_argument("--top_k", type=int, default=10, help="hits printed per text")
    parser.add_argument("--no_search", action="store_true", help="only print the embeddings")
    add_model_args(parser, batch_size=1)
    add_config_args(parser, skip=("batch_size",))
    args = parser.parse_args(argv)
    check_model_args(args)
    if args.top_k < 1:
        fail("--top_k must be positive")
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    texts = [t for t in (args.text or []) if t.strip()]
    if args.input_file:
        try:
            texts += list(read_texts(check_file(args.input_file, "--input_file")))
        except DataFileError as e:
            fail(str(e))
    if not texts:
        if args.text or args.input_file:
            fail("no text: --text and --input_file gave only empty lines")
        texts = [EXAMPLE_TEXT]
    encoder = TextEncoder.from_args(args)
    embeddings = encoder.encode(texts)
    logger.info(f"embedded {len(texts)} text(s) with {encoder.source} ({encoder.kind})")
    print(list(embeddings.shape))
    with np.printoptions(precision=6, suppress=True, threshold=64, edgeitems=4):
        print(embeddings)
    if args.no_search:
        return embeddings, None
    with MilvusSearcher(load_config(args), encoder) as searcher:
        results = searcher.search_vectors(embeddings, args.top_k)
    for text, hits in zip(texts, results):
        print(f"query: {text}")
        for hit in hits:
            print(hit.id, hit.text, hit.score)
    return embeddings, results


if __name__ == "__main__":
    main()
