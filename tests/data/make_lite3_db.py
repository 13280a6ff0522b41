"""Writes tests/data/lite3.db: a tiny database of milvus-lite 3.2.2 (the embedded engine before 2.5.1 became the
default; a .db directory), as an earlier version of this project left it, for the migration test
(tests/test_milvus.py). Run it once with milvus-lite 3.x installed (bench/setup_lite3_venv.sh):

    ~/.cache/neural_search/lite3-venv/bin/python tests/data/make_lite3_db.py
"""

import os
import shutil

from pymilvus import DataType, MilvusClient

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lite3.db")

shutil.rmtree(PATH, ignore_errors=True)
client = MilvusClient(PATH)
schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
schema.add_field("id", DataType.INT64, is_primary=True)
schema.add_field("text", DataType.VARCHAR, max_length=2048)
schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=4)
index = client.prepare_index_params()
index.add_index(field_name="embedding", index_name="embedding", index_type="FLAT", metric_type="IP")
client.create_collection("literature_search", schema=schema, index_params=index)
client.insert(
    "literature_search",
    [{"id": i, "text": f"title {i}", "embedding": [float(i == j) for j in range(4)]} for i in range(3)],
)
client.flush("literature_search")
client.close()
print(f"wrote {PATH}")
