"""Dense recall with a trained in-batch-negatives model: writes recall_result.txt (query<TAB>doc<TAB>score).
The implementation and the flags are in ns_common/recall.py (shared by simcse/ and inbatch_negative/)."""

from ns_common.recall import main

if __name__ == "__main__":
    main()
