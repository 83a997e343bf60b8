# What the PyTorch CNN learner (fashion_mnist_cnn.py) and the Python predictor (../predictors/
# fashion_mnist_predictor.py) share: the options of a script, the documents as arrays, and the network itself, so
# a predictor rebuilds exactly the network the learner trained. It imports torch only in build_model: a predictor
# of HDF5 models needs NumPy alone.
import numpy as np

PIXELS = 784
CLASSES = 10


def option(args, name, i, default=None):
    """This script's value of a per-script option (a list indexed by position; a short list repeats its last)."""
    value = args.get(name)
    if isinstance(value, list):
        return value[min(i, len(value) - 1)] if value else default
    return default if value is None else value


def arrays(batch, labelled=True):
    """A batch of documents as (pixels uint8 [n, 784], labels int64 [n]). labelled: every document must have a
    label y in 0..9; else a document without one gets -1."""
    rows = []
    for doc in batch:
        x = doc.get("x")
        if doc.get("dtype", "uint8") != "uint8" or not isinstance(x, (bytes, list)) or len(x) != PIXELS:
            raise ValueError("document img_num=%r has no x of %d uint8 pixels: clean the data with the "
                             "Fashion-MNIST cleaner" % (doc.get("img_num"), PIXELS))
        rows.append(x if isinstance(x, bytes) else bytes(x))
    if labelled:
        labels = np.fromiter((doc["y"] for doc in batch), dtype=np.int64, count=len(batch))
        if labels.min() < 0 or labels.max() >= CLASSES:
            raise ValueError("a document's label y is outside 0..%d" % (CLASSES - 1))
    else:
        labels = np.fromiter((doc["y"] if isinstance(doc.get("y"), int) else -1 for doc in batch), dtype=np.int64,
                             count=len(batch))
    # joined into a bytearray (one copy), so the array is writable, as torch.from_numpy wants
    return np.frombuffer(bytearray().join(rows), dtype=np.uint8).reshape(-1, PIXELS), labels


def build_model(channels, hidden, dropout):
    """The CNN: per channel count a 3x3 convolution (no bias) + batch norm + ReLU + 2x2 max-pool, then dropout, a
    ReLU layer of hidden units, dropout and the 10 outputs. Its state_dict is the stored model."""
    import torch.nn as nn
    layers, width, side = [], 1, 28
    for c in channels:
        layers += [nn.Conv2d(width, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        width, side = c, side // 2
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(width * side * side, hidden), nn.ReLU(inplace=True),
               nn.Dropout(dropout), nn.Linear(hidden, CLASSES)]
    return nn.Sequential(*layers)
