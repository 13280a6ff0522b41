"""Paddle Inference (CPU/GPU) over an exported in-batch-negatives model: embeddings or pair similarities, with
throughput; --params_path also checks them against the dynamic graph.
The implementation is ns_common.semantic_tools.deploy_main (shared by simcse/ and inbatch_negative/)."""

from ns_common.semantic_tools import deploy_main

if __name__ == "__main__":
    deploy_main()
