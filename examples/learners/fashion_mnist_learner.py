# Nearest-centroid learner, written the way Nemesyst 2.0.6 learners are: it streams batches out of the database
# through the aggregation pipeline of --dl-data-pipeline and yields (metadata, model bytes) for GridFS.
import json
import struct


def main(**kwargs):
    args = kwargs["args"]
    db = kwargs["db"]
    i = args["process"]
    db.connect()
    pipeline = json.loads(args["dl_data_pipeline"][i]) if args["dl_data_pipeline"] else []
    if isinstance(pipeline, dict):
        pipeline = [pipeline] if pipeline else []
    sums = [[0] * 784 for _ in range(10)]
    counts = [0] * 10
    for epoch in range(int(args["dl_epochs"][i])):
        cursor = db.getCursor(db_collection_name=args["dl_data_collection"][i], db_pipeline=pipeline)
        for batch in db.getBatches(db_batch_size=int(args["dl_batch_size"][i]), db_data_cursor=cursor):
            for doc in batch:
                y, x = doc["y"], doc["x"]
                row = sums[y]
                for p in range(784):
                    row[p] += x[p]
                counts[y] += 1
    centroids = [[s / c if c else 0.0 for s in row] for row, c in zip(sums, counts)]
    model = struct.pack("<7840d", *[v for row in centroids for v in row])
    print("trained on %d examples" % sum(counts))
    yield ({"model": "fashion_mnist_nearest_centroid", "examples": sum(counts), "classes": 10,
            "format": "float64 little-endian 10x784"}, model)
