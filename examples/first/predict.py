# The predictor of README "Your first pipeline", in Nemesyst 2.0.6's form: reads the newest model of the bucket
# --dl-output-model-collection through getFiles, and yields for each test row of --dl-data-collection the kind
# whose mean length is nearest. nemesyst stores them in --i-output-prediction-collection, each marked with the model.
import json


def main(**kwargs):
    args, db = kwargs["args"], kwargs["db"]
    i = args["process"]
    bucket = args["dl_output_model_collection"][i]
    newest = db.getCursor(db_collection_name=bucket + ".files",
                          db_pipeline=[{"$sort": {"uploadDate": -1}}, {"$limit": 1}])
    for batch in db.getFiles(db_batch_size=1, db_data_cursor=newest, db_collection_name=bucket):
        means = json.loads(batch[0]["gridout"].read())
    rows = db.getCursor(db_collection_name=args["dl_data_collection"][i], db_pipeline=[{"$match": {"split": "test"}}])
    for doc in rows:
        predicted = min(means, key=lambda kind: abs(means[kind] - doc["length"]))
        yield {"length": doc["length"], "kind": doc["kind"], "predicted": predicted}
