"""Recall@1/5/10/20/50, MRR@10 and nDCG@10 of a recall_result.txt against the gold pairs.
The implementation and the flags are in ns_common/evaluate.py (shared by simcse/ and inbatch_negative/)."""

from ns_common.evaluate import main

if __name__ == "__main__":
    main()
