"""PaddleNLP's `recall/simcse/inference.py`: a few texts through a SimCSE checkpoint's dynamic graph; prints
the embeddings (shape and values) and their pairwise cosine similarities.

    python simcse/inference.py --model_name_or_path output/pipeline/sample/pretrain/ernie/final \
        --params_path output/pipeline/sample/simcse/domain/model_final [--text "..." | --input_file texts.txt]

Flags and built-in examples: ns_common.semantic_tools.inference_main (shared with inbatch_negative/inference.py).
"""

from ns_common.semantic_tools import inference_main

if __name__ == "__main__":
    inference_main(description="Embeds a few texts with a SimCSE checkpoint (dynamic graph).")
