"""predict / export / deploy / inference for a trained semantic encoder: the shared implementation behind
`<stage>/predict.py`, `<stage>/export_model.py`, `<stage>/inference.py` and `<stage>/deploy/python/predict.py`
of simcse/ and inbatch_negative/ (the two stages train the same encoder, so their tools are the same).

    predict:  cosine similarity of each text_a<TAB>text_b line (dynamic graph)
    export:   --params_path -> --output_path/inference.json + inference.pdiparams (+ tokenizer files);
              the graph's output is the normalised embedding
    deploy:   Paddle Inference over an exported directory: embeddings (or similarities for pairs),
              throughput, and with --params_path the max abs difference to the dynamic graph; without
              --input_file, PaddleNLP's built-in examples (a title's embedding, two pairs' similarities)
    inference: a few texts (--text, --input_file or built-in examples) embedded with the dynamic graph:
              shape, values, pairwise cosine (PaddleNLP's <stage>/inference.py)
"""

import argparse
import json
import os

import numpy as np

from ns_common.cli import add_encoder_args, add_encoder_shape_args, check_files, entry_point, layer_list
from ns_common.errors import BadInputError, ConfigError
from ns_common.io import read_text_pairs, read_texts, write_lines
from ns_common.predictor import add_inference_args
from ns_common.utils import Timer, logger, set_device


# ---------------------------------------------------------------- predict (dynamic graph)
def predict_similarity(model, tokenizer, pairs, max_seq_length=64, batch_size=64):
    """Cosine similarity of each (text_a, text_b) pair, as a float32 array."""
    from ns_common.semantic import embed_texts

    a = embed_texts(model, tokenizer, [p[0] for p in pairs], max_seq_length, batch_size, role="query")
    b = embed_texts(model, tokenizer, [p[1] for p in pairs], max_seq_length, batch_size, role="doc")
    return np.sum(a * b, axis=1).astype(np.float32)


def write_similarities(pairs, sims, output_file=None):
    """`text_a<TAB>text_b<TAB>similarity` lines to output_file, or to stdout without one."""
    rows = [(a, b, f"{s:.6f}") for (a, b), s in zip(pairs, sims)]
    if output_file:
        write_lines(output_file, rows)
    else:
        for row in rows:
            print("\t".join(row))


@entry_point
def predict_main(argv=None):
    parser = argparse.ArgumentParser(
        description="Cosine similarity of each text_a<TAB>text_b line with a trained encoder."
    )
    add_encoder_args(parser)
    parser.add_argument("--text_pair_file", required=True, help="text_a<TAB>text_b, e.g. recall/test.csv")
    parser.add_argument(
        "--output_file", default=None, help="write text_a<TAB>text_b<TAB>similarity here (default: print)"
    )
    args = parser.parse_args(argv)
    check_files(("text_pair_file", args.text_pair_file))
    from ns_common.semantic import load_encoder

    set_device(args.device)
    pairs = list(read_text_pairs(args.text_pair_file))
    if not pairs:
        raise BadInputError(f"{args.text_pair_file}: no valid text_a<TAB>text_b lines")
    model, tokenizer = load_encoder(
        args.model_name_or_path, args.params_path, args.output_emb_size, pooling=args.pooling
    )
    timer = Timer()
    sims = predict_similarity(model, tokenizer, pairs, args.max_seq_length, args.batch_size)
    write_similarities(pairs, sims, args.output_file)
    where = args.output_file or "stdout"
    logger.info(
        f"scored {len(pairs)} pairs in {timer.seconds:.1f}s ({len(pairs) / max(timer.seconds, 1e-9):.0f} pairs/s), "
        f"mean similarity {float(sims.mean()):.4f} -> {where}"
    )
    return sims


# ---------------------------------------------------------------- export
def read_export_info(export_dir) -> dict:
    """An export's export_info.json ({} where there is none)."""
    path = os.path.join(export_dir, "export_info.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def export_encoder(model, tokenizer, output_path, extra_info=None, query_drop_layers=()):
    """Static graph of model.forward (normalised embedding) + tokenizer files + config.json, in one directory; with
    query_drop_layers, a second graph for queries under output_path/QUERY_GRAPH: the model without those layers
    (ns_common.semantic.leave_out_layers; the model is changed in place), its weights the same."""
    from ns_common.export import export_static
    from ns_common.modeling import remaining_layers
    from ns_common.predictor import QUERY_GRAPH, query_graph_dir
    from ns_common.semantic import leave_out_layers

    layers = len(model.ptm.encoder.layers)
    query_layers = remaining_layers(layers, query_drop_layers, "--query_drop_layers")  # checked before writing
    earlier = query_graph_dir(output_path)
    if earlier and "query_drop_layers" not in read_export_info(output_path):
        raise ConfigError(
            f"--output_path {output_path}: {earlier} holds a graph no export here recorded (export_info.json); "
            "this export would replace or remove it: move it, or give another directory"
        )
    prefix = export_static(model, output_path)
    tokenizer.save_pretrained(output_path)
    # the backbone's config.json too: it names the architecture, so the tokenizer loads from this directory
    model.ptm.config.save_pretrained(output_path)
    query_dir = os.path.join(output_path, QUERY_GRAPH)
    if query_drop_layers:
        leave_out_layers(model, query_drop_layers)
        export_static(model, query_dir)
    else:  # the query graph an earlier export recorded here would answer queries with another model
        for name in ("inference.json", "inference.pdiparams"):
            if os.path.isfile(os.path.join(query_dir, name)):
                os.remove(os.path.join(query_dir, name))
                logger.info(f"removed the earlier export's query graph {os.path.join(query_dir, name)}")
    info = {**model.encoder_config(), **(extra_info or {})}
    if query_drop_layers:
        info.update(query_drop_layers=list(query_drop_layers), query_layers=len(query_layers), layers=layers)
    with open(os.path.join(output_path, "export_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, ensure_ascii=False)
    return prefix


@entry_point
def export_main(argv=None):
    parser = argparse.ArgumentParser(
        description="Export a trained encoder to a Paddle Inference static graph (inference.json/.pdiparams)."
    )
    parser.add_argument(
        "--model_name_or_path", required=True, help="the backbone directory (or name) the model was trained from"
    )
    parser.add_argument(
        "--params_path",
        default=None,
        help="model_state.pdparams of a trained model (or its directory); none: the backbone as it is (e.g. a "
        "converted pretrained encoder, zero-shot)",
    )
    add_encoder_shape_args(parser)
    parser.add_argument(
        "--output_path", default="./output", help="directory for inference.json, inference.pdiparams and the tokenizer"
    )
    parser.add_argument(
        "--query_drop_layers",
        type=layer_list,
        default=(),
        help="also export, under --output_path/query, the encoder without these layers (0-based, comma-separated: "
        "3,7) for queries alone: a faster query against the whole model's document vectors; default none",
    )
    args = parser.parse_args(argv)
    from ns_common.semantic import load_encoder

    set_device("cpu")
    model, tokenizer = load_encoder(
        args.model_name_or_path, args.params_path, args.output_emb_size, pooling=args.pooling
    )
    prefix = export_encoder(
        model,
        tokenizer,
        args.output_path,
        {"model_name_or_path": args.model_name_or_path, "params_path": args.params_path},
        args.query_drop_layers,
    )
    queries = f"; queries without layers {list(args.query_drop_layers)}" if args.query_drop_layers else ""
    logger.info(
        f"exported encoder (embedding dim {model.embedding_dim}) -> {prefix}.json/.pdiparams with tokenizer in "
        f"{args.output_path}{queries}"
    )
    return prefix


# ---------------------------------------------------------------- deploy (Paddle Inference)
# PaddleNLP's deploy/python/predict.py: one title's embedding, then the similarity of two pairs
DEPLOY_EXAMPLE_PAIRS = (
    ("中西方语言与文化的差异", "中西方文化差异以及语言体现中西方文化,差异,语言体现"),
    ("中西方语言与文化的差异", "飞桨致力于让深度学习技术的创新与应用更简单"),
)


def deploy_examples(predictor, tokenizer, max_seq_length, batch_size):
    """Without --input_file, what PaddleNLP's predictor prints: the embedding of its title (shape, values),
    then its two example pairs with their cosine similarity. Returns the title's embedding."""
    embedding = predictor.encode([EXAMPLE_TEXTS[0]], tokenizer, max_seq_length, batch_size)
    print(list(embedding.shape))
    with np.printoptions(precision=6, suppress=True, threshold=64, edgeitems=4):
        print(embedding)
    pairs = list(DEPLOY_EXAMPLE_PAIRS)
    vectors = predictor.encode([t for pair in pairs for t in pair], tokenizer, max_seq_length, batch_size)
    write_similarities(pairs, np.sum(vectors[0::2] * vectors[1::2], axis=1))
    return embedding


@entry_point
def deploy_main(argv=None):
    parser = argparse.ArgumentParser(
        description="Embeddings with Paddle Inference from an exported encoder; prints throughput."
    )
    parser.add_argument("--model_dir", required=True, help="directory written by export_model.py")
    parser.add_argument(
        "--input_file",
        default=None,
        help="one text a line (-> embeddings), or text_a<TAB>text_b lines with --pairs (-> similarities); "
        "default: PaddleNLP's built-in examples (one title's embedding, two pairs' similarities)",
    )
    parser.add_argument(
        "--pairs", action="store_true", help="input lines are text_a<TAB>text_b: print their cosine similarity"
    )
    parser.add_argument(
        "--output_file",
        default=None,
        help="embeddings as .npy, or similarities as text_a<TAB>text_b<TAB>score with --pairs",
    )
    parser.add_argument("--tokenizer_dir", default=None, help="where the tokenizer files are (default: --model_dir)")
    parser.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    add_inference_args(parser)  # --cpu_threads, --enable_mkldnn (default on) / --no-enable_mkldnn, --precision
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument(
        "--params_path",
        default=None,
        help="also run the dynamic graph of this checkpoint and print the max abs difference",
    )
    parser.add_argument("--model_name_or_path", default=None, help="backbone directory for --params_path")
    add_encoder_shape_args(parser, pooling_help="pooling for --params_path (default: the checkpoint's)")
    args = parser.parse_args(argv)
    if args.input_file:
        check_files(("input_file", args.input_file))
    elif args.params_path or args.pairs or args.output_file:
        raise ConfigError("--params_path, --pairs and --output_file work on --input_file's texts: give one")
    if args.params_path and not args.model_name_or_path:
        raise ConfigError("--params_path needs --model_name_or_path (the backbone it was trained from)")
    from ns_common.modeling import load_tokenizer
    from ns_common.predictor import InferencePredictor

    predictor = InferencePredictor(args.model_dir, args.device, args.cpu_threads, args.enable_mkldnn, args.precision)
    tokenizer = load_tokenizer(args.tokenizer_dir or args.model_dir)
    if not args.input_file:
        return deploy_examples(predictor, tokenizer, args.max_seq_length, args.batch_size)
    if args.pairs:
        pairs = list(read_text_pairs(args.input_file))
        texts = [a for a, _ in pairs] + [b for _, b in pairs]
    else:
        texts = list(read_texts(args.input_file))
    if not texts:
        raise BadInputError(f"{args.input_file}: no texts")
    embeddings = predictor.encode(texts, tokenizer, args.max_seq_length, args.batch_size, progress=True)
    logger.info(
        f"{predictor.settings}: "
        f"{len(texts)} texts, batch {args.batch_size}, {predictor.last_throughput:.1f} texts/s, embedding dim {embeddings.shape[1]}"
    )
    if args.pairs:
        n = len(pairs)
        write_similarities(pairs, np.sum(embeddings[:n] * embeddings[n:], axis=1), args.output_file)
    elif args.output_file:
        np.save(args.output_file, embeddings)
        logger.info(f"wrote {embeddings.shape} embeddings -> {args.output_file}")
    if args.params_path:
        from ns_common.semantic import embed_texts, load_encoder

        set_device("cpu")
        model, _ = load_encoder(args.model_name_or_path, args.params_path, args.output_emb_size, pooling=args.pooling)
        dynamic = embed_texts(model, tokenizer, texts, args.max_seq_length, args.batch_size)
        diff = float(np.max(np.abs(dynamic - embeddings)))
        logger.info(f"max abs difference to the dynamic graph: {diff:.2e} ({'OK' if diff < 1e-4 else 'MISMATCH'})")
    return embeddings


# ---------------------------------------------------------------- inference (PaddleNLP's <stage>/inference.py)
# PaddleNLP's inference.py embeds this one hard-coded title (its id2corpus); two more make the cosine table useful
EXAMPLE_TEXTS = (
    "国有企业引入非国有资本对创新绩效的影响——基于制造业国有上市公司的经验证据",
    "混合所有制改革对国有企业创新投入的影响",
    "中西方语言与文化的差异",
)


@entry_point
def inference_main(argv=None, description=None):
    """Embeds a few texts with the dynamic graph of a checkpoint and prints the embeddings' shape, their values
    and (for 2 to 20 texts) their pairwise cosine similarities. Returns the embeddings."""
    parser = argparse.ArgumentParser(
        description=description or "Embeds a few texts with a trained encoder (dynamic graph)."
    )
    add_encoder_args(
        parser
    )  # --model_name_or_path --params_path --output_emb_size --pooling --max_seq_length --batch_size --device
    parser.add_argument("--text", action="append", default=None, help="a text to embed (repeat the flag for more)")
    parser.add_argument("--input_file", default=None, help="one text a line (added after the --text ones)")
    parser.add_argument("--output_file", default=None, help="also save the embeddings here as .npy")
    args = parser.parse_args(argv)
    if args.input_file:
        check_files(("input_file", args.input_file))
    texts = [t for t in (args.text or []) if t.strip()]
    if args.input_file:
        texts += list(read_texts(args.input_file))
    if not texts:
        if args.text or args.input_file:
            raise BadInputError("no text to embed: --text and --input_file gave only empty lines")
        texts = list(EXAMPLE_TEXTS)
        logger.info(f"no --text / --input_file: embedding {len(texts)} built-in example texts")
    from ns_common.semantic import embed_texts, load_encoder

    set_device(args.device)
    model, tokenizer = load_encoder(
        args.model_name_or_path, args.params_path, args.output_emb_size, pooling=args.pooling
    )
    embeddings = embed_texts(model, tokenizer, texts, args.max_seq_length, args.batch_size)
    print(f"embeddings shape: {list(embeddings.shape)}")
    with np.printoptions(precision=6, suppress=True, threshold=64, edgeitems=4):  # long rows summarised with ...
        print(embeddings)
        if 1 < len(texts) <= 20:  # a table for a few texts; use --output_file for many
            print("pairwise cosine similarity:")
            print(embeddings @ embeddings.T)
    for i, text in enumerate(texts[:20]):
        print(f"[{i}] {text}")
    if args.output_file:
        np.save(args.output_file, embeddings)
        logger.info(f"wrote {list(embeddings.shape)} embeddings -> {args.output_file}")
    return embeddings
