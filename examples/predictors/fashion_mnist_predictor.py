# Fashion-MNIST predictor, written the way Nemesyst 2.0.6 predictors are: a generator main(**kwargs) that finds
# models in the GridFS bucket --dl-output-model-collection (a cursor over BUCKET.files), reads each through
# db.getFiles, predicts every test-split document of --data-collection (else --dl-data-collection) and yields one
# prediction per example, {img_num, prediction, y}, then one summary document per model,
#
#     {summary: true, model_id, bucket, architecture, test_accuracy, n, correct, predicted, seconds}
#
# (n: the labelled test examples; test_accuracy = correct / n), into --i-output-prediction-collection, and prints
# "ARCHITECTURE model ID: accuracy 0.xxxx (correct/n)". The host stamps every document a script yields after it
# loaded a model through getFiles with that model's id (_nemesyst.model), so each prediction and each summary
# references the model that made it: the models are loaded one at a time, each just before its predictions.
#
# Which models: FASHION_MNIST_MODELS=each (default) takes the newest model (by uploadDate) of each architecture in
# the bucket, so one run evaluates every learner of the round (the C MLP and the PyTorch CNN); =newest takes only
# the newest model, as 2.0.6's example predictor did; a comma-separated list of architecture names takes the newest
# of each of those. With "each", a model no loader below reads is skipped (logged; the script fails when it reads
# none); otherwise it fails the script. A model's architecture is the name in its metadata's "model"
# (fashion_mnist_mlp, fashion_mnist_cnn, ...), else its "architecture".
#
# The loader comes from the model's metadata:
#   PyTorch (framework "pytorch", architecture fashion_mnist_cnn: examples/learners/fashion_mnist_cnn.py): the
#     torch.save'd state_dict, loaded into the network its metadata describes (channels, hidden); needs torch.
#   HDF5 (format "HDF5...", or the HDF5 signature: the C learner examples/plugins/fashion_mnist_learner.c), read
#     from the bytes in memory with h5py (no temporary file), by the datasets present: /w1 /b1 /w2 /b2 ... (an MLP,
#     ReLU between the layers: 784-256-10 in the C learner) or /weights /bias (softmax regression), float32; x is
#     pixels / the file's pixel_scale attribute (255 when it has none).
#   fashion_mnist_nearest_centroid (examples/learners/fashion_mnist_learner.py): 10 x 784 float64 centroids of the
#     raw pixels, little-endian; the nearest centroid wins.
# torch and h5py are imported only when a model needs them; every loader needs NumPy.
import io
import os
import sys
import time

import numpy as np

# shared with the CNN learner, which is beside it in ../learners: the options, the documents as arrays, the network
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "learners"))
from fashion_mnist_common import CLASSES, PIXELS, arrays, build_model, option  # noqa: E402
BATCH = 512
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TORCH_ARCHITECTURES = ("fashion_mnist_cnn",)


def architecture_of(meta):
    meta = meta or {}
    return str(meta.get("model") or meta.get("architecture") or "unknown")


# --- loaders: each returns (a function from pixels uint8 [n, 784] to predicted classes [n], a description) ---

def torch_loader(meta, data):
    import torch

    threads = int(os.environ.get("FASHION_MNIST_THREADS") or 0)
    if threads:
        torch.set_num_threads(threads)
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    # dropout does nothing in evaluation and has no parameters: load_state_dict (strict) refuses any other network
    model = build_model([int(c) for c in meta.get("channels", [16, 32, 64])], int(meta.get("hidden", 128)),
                        float(meta.get("dropout", 0.0)))
    model.load_state_dict(state)
    model.eval()

    def predict(pixels):
        with torch.no_grad():
            x = torch.from_numpy(pixels).view(-1, 1, 28, 28).float().div_(255.0)
            return model(x).argmax(1).numpy()
    return predict, "PyTorch CNN, channels %s, hidden %d" % (meta.get("channels"), int(meta.get("hidden", 128)))


def hdf5_loader(meta, data):
    import h5py
    with h5py.File(io.BytesIO(data), "r") as f:
        names = set(f.keys())
        scale = float(f.attrs.get("pixel_scale", 255.0))
        if "w1" in names:
            layers, k = [], 1
            while "w%d" % k in names:
                layers.append((np.asarray(f["w%d" % k][()], np.float32), np.asarray(f["b%d" % k][()], np.float32)))
                k += 1
            kind = "MLP " + "-".join([str(PIXELS)] + [str(w.shape[1]) for w, _ in layers if w.ndim == 2])
        elif {"weights", "bias"} <= names:
            layers = [(np.asarray(f["weights"][()], np.float32), np.asarray(f["bias"][()], np.float32))]
            kind = "softmax regression"
        else:
            raise ValueError("an HDF5 model with datasets %s: neither an MLP (/w1 /b1 /w2 /b2 ...) nor softmax "
                             "regression (/weights /bias)" % sorted(names))
    width = PIXELS
    for k, (w, b) in enumerate(layers):
        if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
            raise ValueError("HDF5 model layer %d: weights %s and bias %s do not follow a %d-wide input"
                             % (k + 1, w.shape, b.shape, width))
        width = w.shape[1]
    if width != CLASSES:
        raise ValueError("HDF5 model: %d outputs, not %d" % (width, CLASSES))

    def predict(pixels):
        h = pixels.astype(np.float32) * np.float32(1.0 / scale)
        for k, (w, b) in enumerate(layers):
            h = h @ w + b
            if k + 1 < len(layers):
                np.maximum(h, 0, out=h)
        return h.argmax(1)
    return predict, "HDF5 " + kind


def centroid_loader(meta, data):
    if len(data) != CLASSES * PIXELS * 8:
        raise ValueError("a nearest-centroid model of %d bytes, not %d" % (len(data), CLASSES * PIXELS * 8))
    centroids = np.frombuffer(data, dtype="<f8").reshape(CLASSES, PIXELS)
    norms = (centroids ** 2).sum(1)

    def predict(pixels):
        x = pixels.astype(np.float64)
        return (norms - 2.0 * (x @ centroids.T)).argmin(1)  # |x - c|^2 without the |x|^2 every class shares
    return predict, "nearest centroid"


def loader_for(meta, data):
    """The loader the model's metadata calls for (the HDF5 signature decides when the metadata says nothing), or
    None when there is none."""
    arch = architecture_of(meta)
    if meta.get("framework") == "pytorch" or arch in TORCH_ARCHITECTURES:
        return torch_loader
    if arch == "fashion_mnist_nearest_centroid":
        return centroid_loader
    if str(meta.get("format", "")).startswith("HDF5") or data[:8] == HDF5_SIGNATURE:
        return hdf5_loader
    return None


def pick_models(db, bucket, which):
    """The (id, architecture) of the models to evaluate, newest first."""
    files = db.getCursor(db_collection_name=bucket + ".files",
                         db_pipeline=[{"$sort": {"uploadDate": -1}},
                                      {"$project": {"_id": 1, "metadata.model": 1, "metadata.architecture": 1}}])
    wanted = None if which in ("each", "newest") else set(w.strip() for w in which.split(",") if w.strip())
    picked, seen = [], set()
    for doc in files:
        arch = architecture_of(doc.get("metadata"))
        if arch in seen or (wanted is not None and arch not in wanted):
            continue
        seen.add(arch)
        picked.append((doc["_id"], arch))
        if which == "newest":
            break
    files.close()
    return picked


def main(**kwargs):
    args = kwargs["args"]
    db = kwargs["db"]
    i = args["process"]
    db.connect()
    bucket = option(args, "dl_output_model_collection", i)
    collection = option(args, "data_collection", i) or option(args, "dl_data_collection", i)
    which = os.environ.get("FASHION_MNIST_MODELS", "each").strip() or "each"
    models = pick_models(db, bucket, which)
    if not models:
        raise RuntimeError("no model%s in GridFS bucket %r: run the learner first"
                           % ("" if which in ("each", "newest") else " of architecture " + which, bucket))
    skipped = 0
    for model_id, arch in models:
        # getFiles reports the model to the host: what this script yields from here on references it
        fc = db.getCursor(db_collection_name=bucket + ".files",
                          db_pipeline=[{"$match": {"_id": model_id}}, {"$project": {"_id": 1}}])
        meta = data = None
        for batch in db.getFiles(db_batch_size=1, db_data_cursor=fc, db_collection_name=bucket):
            for doc in batch:
                meta = dict(doc["gridout"].metadata or {})
                data = doc["gridout"].read()
        if data is None:
            raise RuntimeError("model %s vanished from GridFS bucket %r" % (model_id, bucket))
        loader = loader_for(meta, data)
        if loader is None:
            if which != "each":
                raise ValueError("model %s of architecture %r: no loader for it (neither PyTorch, HDF5 nor nearest "
                                 "centroid)" % (model_id, arch))
            print("skipping model %s of architecture %r: no loader for it" % (model_id, arch))
            skipped += 1
            continue
        predict, kind = loader(meta, data)
        print("using %s model %s of %r (%d bytes, %s)" % (arch, model_id, bucket, len(data), kind))
        del data

        t0 = time.monotonic()
        total = labelled = correct = 0
        cursor = db.getCursor(db_collection_name=collection, db_pipeline=[{"$match": {"split": "test"}}])
        for batch in db.getBatches(db_batch_size=BATCH, db_data_cursor=cursor):
            pixels, labels = arrays(batch, labelled=False)
            predictions = predict(pixels)
            for doc, p, y in zip(batch, predictions.tolist(), labels.tolist()):
                out = {"img_num": doc.get("img_num"), "prediction": p}
                if y >= 0:
                    out["y"] = y
                    labelled += 1
                    correct += p == y
                yield out
            total += len(batch)
        seconds = time.monotonic() - t0
        accuracy = correct / labelled if labelled else None
        if labelled:
            print("%s model %s: accuracy %.4f (%d/%d), %d test examples predicted in %.1f s"
                  % (arch, model_id, accuracy, correct, labelled, total, seconds))
        else:
            print("%s model %s: %d test examples predicted, none labelled" % (arch, model_id, total))
        if labelled:
            # measured on the model it loaded: the host keeps it in that model's metadata (metadata.evaluation)
            # and in the run record
            db.log_metric("test_accuracy", 0, accuracy)
        yield {"summary": True, "model_id": model_id, "bucket": bucket, "architecture": arch,
               "test_accuracy": accuracy, "n": labelled, "correct": correct, "predicted": total,
               "seconds": seconds}
    if skipped == len(models):
        raise RuntimeError("no model in GridFS bucket %r that this predictor can load" % bucket)
