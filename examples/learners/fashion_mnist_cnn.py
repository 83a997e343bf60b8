# Fashion-MNIST convolutional network in PyTorch, written the way Nemesyst 2.0.6 learners are: a generator
# main(**kwargs) that streams batches out of the database through --dl-data-pipeline (db.getCursor, db.getBatches)
# and yields (metadata, model bytes) for GridFS. Runs unchanged through python/nemesyst_adapter.py; needs PyTorch
# and NumPy (Debian: python3-torch python3-numpy).
#
#   nemesyst --dl-learn --dl-learner examples/learners/fashion_mnist_cnn.py --dl-data-collection fashion_mnist \
#       --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-batch-size 128 --dl-epochs 3 \
#       --dl-output-model-collection fashion_models
#
# The documents are the Fashion-MNIST cleaner's (examples/plugins/fashion_mnist_cleaner.c, or
# examples/cleaners/fashion_mnist_cleaner.py): x the 784 pixels as BSON binary (dtype "uint8" beside it, when
# given), y the label. Each batch becomes one uint8 array with numpy.frombuffer, then a float tensor of
# pixels / 255, shaped [n, 1, 28, 28].
#
# The network (build_model in fashion_mnist_common.py beside this script, shared with the predictor): three blocks
# of 3x3 convolution (16, 32, 64 channels, no bias) + batch norm + ReLU + 2x2 max-pool (28 -> 14 -> 7 -> 3), then
# dropout, a 576 -> 128 ReLU layer, dropout, and 128 -> 10. Adam; the first epoch at the constant learning rate,
# the later ones annealed to 0 on a cosine (the number of steps is known once the first epoch has read the data).
# About 91% test accuracy after 3 epochs over the 60,000 training images in 2-3 minutes on one CPU core.
#
# Data: the first epoch streams the documents batch by batch from the database, in the pipeline's order. It keeps
# their pixels and labels (one uint8 array of 47 MB for the 60,000 training images; never the documents), so the
# later epochs read no database and go through the examples in a fresh random order each; FASHION_MNIST_STREAM=1
# streams every epoch from the database instead (bounded memory whatever the data size; every epoch then sees the
# pipeline's order).
#
# The model is yielded as (metadata, torch.save(state_dict) bytes); the metadata names the architecture and its
# parameters (what a predictor needs to rebuild the network: examples/predictors/fashion_mnist_predictor.py) and
# holds the last epoch's train accuracy and loss (measured on each batch before its update), the epochs, the
# examples and the settings. When the run retrains (--dl-input-model-collection with --dl-input-model-pipeline) it
# starts from that model, which must be this network's state_dict.
#
# Learner groups (--dl-data-parallel K): the K members train one network with torch.distributed (gloo, from the
# MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE that nemesyst sets) and DistributedDataParallel, which averages the
# gradients; each reads only its shard (the adapter's getCursor applies it), all of it before the first step, takes
# batches of ceil(--dl-batch-size / K) so that a step still sees about --dl-batch-size examples, and every epoch
# runs the fewest steps any member has (shards differ by a document at most). The statistics are the group's.
#
# Environment: FASHION_MNIST_LR (Adam's learning rate, default 0.003), FASHION_MNIST_SEED (default 0: the same
# data in the same order give the same model), FASHION_MNIST_THREADS (PyTorch's threads; default half the CPUs this
# process may use, at least 1: the other scripts of the round, the database and the ranks share the machine),
# FASHION_MNIST_STREAM.
import json
import io
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from fashion_mnist_common import arrays, build_model, option  # beside this script (the adapter puts it on sys.path)

ARCHITECTURE = "fashion_mnist_cnn"
CHANNELS = [16, 32, 64]
HIDDEN = 128
DROPOUT = 0.2


def as_input(pixels):
    """uint8 [n, 784] (array or tensor) to the network's input: float32 [n, 1, 28, 28] in [0, 1]."""
    x = torch.from_numpy(pixels) if isinstance(pixels, np.ndarray) else pixels
    return x.view(-1, 1, 28, 28).float().div_(255.0)


def default_threads():
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus // 2)


def main(**kwargs):
    args = kwargs["args"]
    db = kwargs["db"]
    i = args["process"]
    db.connect()
    collection = option(args, "dl_data_collection", i)
    pipeline = option(args, "dl_data_pipeline", i) or "[]"
    pipeline = json.loads(pipeline) if isinstance(pipeline, str) else pipeline
    if isinstance(pipeline, dict):
        pipeline = [pipeline] if pipeline else []
    batch_size = int(option(args, "dl_batch_size", i, 128))
    epochs = int(option(args, "dl_epochs", i, 1))
    lr = float(os.environ.get("FASHION_MNIST_LR") or 0.003)
    seed = int(os.environ.get("FASHION_MNIST_SEED") or 0)
    threads = int(os.environ.get("FASHION_MNIST_THREADS") or 0) or default_threads()
    stream = os.environ.get("FASHION_MNIST_STREAM", "0") not in ("", "0", "false", "no")
    if epochs < 1:
        raise ValueError("--dl-epochs must be at least 1")
    rank, members = db.group
    dist = None
    if members > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        batch_size = -(-batch_size // members)
        stream = False

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    model = build_model(CHANNELS, HIDDEN, DROPOUT)
    retrained = False
    if args.get("input_model"):
        try:
            state = torch.load(args["input_model"], map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as e:
            raise RuntimeError("the input model %s is not a %s state_dict (%s)"
                               % (args.get("input_model_id"), ARCHITECTURE, e)) from e
        retrained = True
        print("retraining the input model %s" % args.get("input_model_id"))
    net = model
    if members > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    scheduler = None
    print("training %s (%d parameters) for %d epochs, batch %d, %d threads%s" % (
        ARCHITECTURE, sum(p.numel() for p in model.parameters()), epochs, batch_size, threads,
        ", streaming every epoch" if stream else ""))

    kept_x, kept_y = [], []      # the first epoch's batches, as uint8/int64 arrays (unless streaming)
    train_x = train_y = None     # the same, joined, for the later epochs
    t_start = time.monotonic()
    if members > 1:
        # a group member reads its whole shard first: every member must take the same number of steps
        cursor = db.getCursor(db_collection_name=collection, db_pipeline=pipeline)
        for x, y in (arrays(b) for b in db.getBatches(db_batch_size=batch_size, db_data_cursor=cursor)):
            kept_x.append(x)
            kept_y.append(y)
        if not kept_y:
            kept_x, kept_y = [np.zeros((0, 784), dtype=np.uint8)], [np.zeros(0, dtype=np.int64)]
        train_x = torch.from_numpy(np.concatenate(kept_x))
        train_y = torch.from_numpy(np.concatenate(kept_y))
        kept_x = kept_y = None
    for epoch in range(epochs):
        t0 = time.monotonic()
        model.train()
        if members > 1:
            perm = torch.randperm(len(train_y), generator=order)
            parts = list(perm.split(batch_size))
            steps_all = torch.tensor([len(parts)])
            dist.all_reduce(steps_all, op=dist.ReduceOp.MIN)
            batches = ((train_x[idx], train_y[idx]) for idx in parts[:int(steps_all)])
        elif epoch == 0 or stream:
            cursor = db.getCursor(db_collection_name=collection, db_pipeline=pipeline)
            batches = (arrays(b) for b in db.getBatches(db_batch_size=batch_size, db_data_cursor=cursor))
        else:
            perm = torch.randperm(len(train_y), generator=order)
            batches = ((train_x[idx], train_y[idx]) for idx in perm.split(batch_size))
        examples = correct = steps = 0
        loss_sum = 0.0
        for x, y in batches:
            if epoch == 0 and not stream and members == 1:
                kept_x.append(x)
                kept_y.append(y)
            target = torch.from_numpy(y) if isinstance(y, np.ndarray) else y
            out = net(as_input(x))
            loss = F.cross_entropy(out, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            n = len(target)
            examples += n
            steps += 1
            loss_sum += loss.item() * n
            correct += int((out.argmax(1) == target).sum())
        if members > 1:
            totals = torch.tensor([loss_sum, float(correct), float(examples)], dtype=torch.float64)
            dist.all_reduce(totals)
            loss_sum, correct, examples = float(totals[0]), int(totals[1]), int(totals[2])
        if examples == 0:
            raise RuntimeError("no training documents in %r through --dl-data-pipeline %s" % (collection, pipeline))
        if epoch == 0:
            if not stream and members == 1:
                train_x = torch.from_numpy(np.concatenate(kept_x))
                train_y = torch.from_numpy(np.concatenate(kept_y))
                kept_x = kept_y = None
            if epochs > 1:
                scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=(epochs - 1) * steps)
        print("epoch %d/%d: %d examples, loss %.4f, accuracy %.4f (%.1f s)" % (
            epoch + 1, epochs, examples, loss_sum / examples, correct / examples, time.monotonic() - t0))
        # the history, for nemesyst-registry metrics RUN_ID (the model's metadata keeps the last epoch's)
        db.log_metric("loss", epoch, loss_sum / examples)
        db.log_metric("train_accuracy", epoch, correct / examples)
    seconds = time.monotonic() - t_start
    if members > 1:
        dist.destroy_process_group()

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    print("trained on %d examples in %.1f s; saving %d bytes" % (examples, seconds, buf.tell()))
    yield ({"model": ARCHITECTURE, "architecture": ARCHITECTURE, "framework": "pytorch",
            "torch_version": torch.__version__,
            "format": "torch.save(state_dict) of build_model(channels, hidden, dropout) in "
                      "examples/learners/fashion_mnist_cnn.py; input: pixels / 255 as float32 [n, 1, 28, 28]",
            "channels": list(CHANNELS), "hidden": HIDDEN, "dropout": DROPOUT,
            "train_accuracy": correct / examples, "loss": loss_sum / examples, "epochs": epochs,
            "examples": examples, "batch_size": batch_size, "learning_rate": lr, "optimizer": "Adam",
            "schedule": "constant for epoch 1, then cosine annealing to 0", "seed": seed, "threads": threads,
            "train_seconds": seconds, "streamed_every_epoch": stream, "retrained": retrained,
            "data_parallel": members},
           buf.getvalue())
