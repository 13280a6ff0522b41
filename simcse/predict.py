"""Cosine similarity of each text_a<TAB>text_b line (e.g. recall/test.csv) with a trained SimCSE model.
The implementation is ns_common.semantic_tools.predict_main (shared by simcse/ and inbatch_negative/)."""

from ns_common.semantic_tools import predict_main

if __name__ == "__main__":
    predict_main()
