# Fashion-MNIST cleaner, written the way Nemesyst 2.0.6 cleaners are: a generator `main(**kwargs)` that yields one
# document per example. Reads the gzip-compressed IDX files given with --data (images then labels, train then
# test), or the Debian dataset-fashion-mnist files by default. FASHION_MNIST_LIMIT=N keeps N examples per split.
import datetime
import gzip
import os
import struct

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def read_idx(path, limit):
    with gzip.open(path, "rb") as f:
        magic, count = struct.unpack(">II", f.read(8))
        if magic == 0x803:
            rows, cols = struct.unpack(">II", f.read(8))
            size = rows * cols
        elif magic == 0x801:
            size = 1
        else:
            raise ValueError("%s: not an IDX image or label file (magic 0x%x)" % (path, magic))
        count = min(count, limit) if limit else count
        for _ in range(count):
            chunk = f.read(size)
            yield chunk if size > 1 else chunk[0]


def main(**kwargs):
    args = kwargs["args"]
    files = args.get("data") or [os.path.join(DEFAULT_DIR, f) for f in DEFAULT_FILES]
    limit = int(os.environ.get("FASHION_MNIST_LIMIT", "0"))
    import_time = datetime.datetime.utcnow()
    img_num = 0
    for split, (images, labels) in zip(("train", "test"), (files[0:2], files[2:4])):
        print("importing %s split from %s" % (split, images))
        for x, y in zip(read_idx(images, limit), read_idx(labels, limit)):
            yield {
                "x": x,                 # 784 bytes of pixels, stored as BSON binary
                "y": int(y),
                "img_num": img_num,
                "split": split,
                "dataset": "fashion-mnist",
                "utc_import_time": import_time,
            }
            img_num += 1
