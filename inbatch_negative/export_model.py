"""Exports a trained in-batch-negatives model (--params_path) to a static graph under --output_path:
inference.json + inference.pdiparams (output: the normalised embedding) and the tokenizer files.
The implementation is ns_common.semantic_tools.export_main (shared by simcse/ and inbatch_negative/)."""

from ns_common.semantic_tools import export_main

if __name__ == "__main__":
    export_main()
