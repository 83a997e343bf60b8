# Predictor, written the way Nemesyst 2.0.6 predictors are: loads the newest model from GridFS and yields one
# prediction per test example.
import struct


def main(**kwargs):
    args = kwargs["args"]
    db = kwargs["db"]
    i = args["process"]
    db.connect()
    bucket = args["dl_output_model_collection"][i]
    fc = db.getCursor(db_collection_name=bucket + ".files",
                      db_pipeline=[{"$sort": {"uploadDate": -1}}, {"$limit": 1}, {"$project": {"_id": 1}}])
    centroids = None
    for batch in db.getFiles(db_batch_size=1, db_data_cursor=fc, db_collection_name=bucket):
        for doc in batch:
            flat = struct.unpack("<7840d", doc["gridout"].read())
            centroids = [flat[k * 784:(k + 1) * 784] for k in range(10)]
    if centroids is None:
        raise RuntimeError("no model in GridFS bucket %r: run the learner first" % bucket)
    cursor = db.getCursor(db_collection_name=args["data_collection"][i], db_pipeline=[{"$match": {"split": "test"}}])
    for batch in db.getBatches(db_batch_size=256, db_data_cursor=cursor):
        for doc in batch:
            x = doc["x"]
            best = min(range(10), key=lambda k: sum((x[p] - centroids[k][p]) ** 2 for p in range(0, 784, 4)))
            yield {"img_num": doc["img_num"], "prediction": best, "y": doc["y"]}
