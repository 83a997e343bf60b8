# The learner of README "Your first pipeline", in Nemesyst 2.0.6's form: reads --dl-data-collection through
# --dl-data-pipeline in batches, computes the mean length of each kind, and yields (metadata, bytes): nemesyst
# stores the bytes, the means as JSON, in the GridFS bucket --dl-output-model-collection, with their lineage.
import json


def main(**kwargs):
    args, db = kwargs["args"], kwargs["db"]
    i = args["process"]  # this script's position: its value in every per-script option
    cursor = db.getCursor(db_collection_name=args["dl_data_collection"][i],
                          db_pipeline=json.loads(args["dl_data_pipeline"][i]))
    lengths = {}
    for batch in db.getBatches(db_batch_size=args["dl_batch_size"][i], db_data_cursor=cursor):
        for doc in batch:
            lengths.setdefault(doc["kind"], []).append(doc["length"])
    means = {kind: sum(v) / len(v) for kind, v in lengths.items()}
    yield ({"model": "mean length per kind", "means": means}, json.dumps(means).encode())
