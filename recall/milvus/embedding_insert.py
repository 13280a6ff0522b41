"""PaddleNLP's `recall/milvus/embedding_insert.py` (an older revision's insert script, hard-coded to
corpus_embedding.npy, collection literature_search): the same as insert.py, whose flags it takes.

    python recall/milvus/embedding_insert.py --data_path data/sample/milvus/milvus_data.csv \
        --embedding_path output/milvus/corpus_embedding.npy [--uri ... --collection ... --partition ... --batch_size ...]

Here the corpus file is needed too: the collection stores each document's text next to its vector (and its
BM25 terms). Entity id = corpus line = row of the .npy; reruns upsert, never duplicate.
"""

from recall.milvus.insert import main

if __name__ == "__main__":
    main()
