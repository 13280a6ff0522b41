"""PaddleNLP's `recall/in_batch_negative/inference.py`, for the in-batch-negatives model: embeds a few
texts with the checkpoint's dynamic graph and prints them, then how similar each pair is (cosine).

    python inbatch_negative/inference.py --model_name_or_path output/pipeline/sample/pretrain/ernie/final \
        --params_path output/pipeline/sample/inbatch/domain_simcse/model_final --output_file emb.npy

The same tool as simcse/inference.py (ns_common.semantic_tools.inference_main): see its flags with --help.
"""

from ns_common.semantic_tools import inference_main

if __name__ == "__main__":
    inference_main(description="Embeds a few texts with an in-batch-negatives checkpoint (dynamic graph).")
