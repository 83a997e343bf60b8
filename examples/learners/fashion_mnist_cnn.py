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
# Checkpoints (README "Long training"): after each epoch it stores, with db.save_checkpoint and step = the epochs
# done, torch.save (into an io.BytesIO) of a dict: a format version, the model's and the optimizer's state_dicts
# (Adam's moments and step counts), the cosine schedule's (its T_max and position), the epochs done, the RNG states
# (torch's, which dropout draws from, and the generator of the epochs' orders; in a group each member's), the last
# epoch's statistics and the settings. At its start it loads the newest one (db.load_checkpoint) and, when there is
# one, restores all of that and goes on with the next epoch, so a run stopped and resumed (--resume RUN) trains as
# an uninterrupted one would. A resumed run that skips the first epoch reads the data it would have kept then from
# the database before its first epoch, in the same order. When a stop is coming (db.checkpoint_requested(); in a
# group, when any member is asked) it ends after that epoch's checkpoint with "stopping: checkpoint after epoch N",
# so that the run is recorded as interrupted. In a learner group member 0 stores the checkpoint and every member
# loads the same one. FASHION_MNIST_HOLD_AFTER=N (for tests) waits after epoch N's checkpoint in the run's first
# attempt (NEMESYST_ATTEMPT 1), up to 10 minutes, until it is asked to stop, so that a test can stop the run there.
#
# Environment: FASHION_MNIST_LR (Adam's learning rate, default 0.003), FASHION_MNIST_SEED (default 0: the same
# data in the same order give the same model), FASHION_MNIST_THREADS (PyTorch's threads; default half the CPUs this
# process may use, at least 1: the other scripts of the round, the database and the ranks share the machine),
# FASHION_MNIST_STREAM, FASHION_MNIST_HOLD_AFTER.
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


CHECKPOINT_VERSION = 1


def hold_for_stop(db, epochs_done):
    """FASHION_MNIST_HOLD_AFTER=N, for tests: after epoch N's checkpoint in the run's first attempt, wait until a
    stop is requested (10 minutes at most)."""
    hold = os.environ.get("FASHION_MNIST_HOLD_AFTER", "")
    if not hold or int(hold) != epochs_done or os.environ.get("NEMESYST_ATTEMPT", "1") != "1":
        return
    print("FASHION_MNIST_HOLD_AFTER=%s: waiting to be asked to stop" % hold)
    end = time.monotonic() + 600
    while not db.checkpoint_requested() and time.monotonic() < end:
        time.sleep(0.02)


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
    # a checkpoint of this run (a resumed one): the state after its epochs; else a fresh start
    ckpt = db.load_checkpoint()
    if ckpt is not None:
        data, step, _ = ckpt
        # this learner's own state from its run's store, with floats (learning rates) that torch 1.13's
        # weights-only loader cannot read
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION or \
                ckpt.get("architecture") != ARCHITECTURE or ckpt.get("epoch") != step:
            raise RuntimeError("the checkpoint at step %d is not a version %d checkpoint of this %s learner"
                               % (step, CHECKPOINT_VERSION, ARCHITECTURE))
        if not 1 <= step <= epochs:
            raise RuntimeError("the checkpoint holds %d epochs done, but --dl-epochs is %d" % (step, epochs))
        if ckpt.get("epochs") != epochs or ckpt.get("learning_rate") != lr:
            print("warning: the checkpoint was made for --dl-epochs %s and learning rate %s, this attempt has %d and "
                  "%g" % (ckpt.get("epochs"), ckpt.get("learning_rate"), epochs, lr))
        model.load_state_dict(ckpt["model"])
        retrained = bool(ckpt.get("retrained"))
        rngs = ckpt["rng"]  # one (torch, order) pair per member of the group that saved it
        torch_rng, order_rng = rngs[rank] if len(rngs) == members else rngs[0]
        torch.set_rng_state(torch_rng)
        order.set_state(order_rng)
        print("goes on from its checkpoint after epoch %d of %d (saved by a group of %d)"
              % (step, epochs, len(rngs)))
    elif args.get("input_model"):
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
    start = 0
    examples = correct = 0
    loss_sum = seconds_before = 0.0
    if ckpt is not None:
        if ckpt["scheduler"] is not None:
            # made before the optimizer's state is loaded, which then holds the schedule's learning rates
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=ckpt["scheduler"]["T_max"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        start = ckpt["epoch"]
        examples, correct, loss_sum = ckpt["examples"], ckpt["correct"], ckpt["loss_sum"]
        seconds_before = ckpt["train_seconds"]

    def save_checkpoint(done):
        """The state after done epochs, through db.save_checkpoint (step: done)."""
        rng = (torch.get_rng_state(), order.get_state())
        rngs = [rng]
        if members > 1:
            rngs = [None] * members
            dist.all_gather_object(rngs, rng)
        buf = io.BytesIO()
        torch.save({"version": CHECKPOINT_VERSION, "architecture": ARCHITECTURE, "epoch": done, "epochs": epochs,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None, "rng": rngs,
                    "examples": examples, "correct": correct, "loss_sum": loss_sum,
                    "train_seconds": seconds_before + time.monotonic() - t_start, "retrained": retrained,
                    "learning_rate": lr, "batch_size": batch_size, "seed": seed, "members": members}, buf)
        db.save_checkpoint(buf, done, {"model": ARCHITECTURE, "checkpoint_version": CHECKPOINT_VERSION,
                                       "epochs_done": done, "epochs": epochs})

    print("training %s (%d parameters) for %d epochs, batch %d, %d threads%s" % (
        ARCHITECTURE, sum(p.numel() for p in model.parameters()), epochs, batch_size, threads,
        ", streaming every epoch" if stream else ""))

    kept_x, kept_y = [], []      # the first epoch's batches, as uint8/int64 arrays (unless streaming)
    train_x = train_y = None     # the same, joined, for the later epochs
    t_start = time.monotonic()
    if members > 1 or (start > 0 and not stream):
        # a group member reads its whole shard first: every member must take the same number of steps; a resumed
        # run past the first epoch reads what that epoch would have kept, in the same order
        cursor = db.getCursor(db_collection_name=collection, db_pipeline=pipeline)
        for x, y in (arrays(b) for b in db.getBatches(db_batch_size=batch_size, db_data_cursor=cursor)):
            kept_x.append(x)
            kept_y.append(y)
        if not kept_y:
            kept_x, kept_y = [np.zeros((0, 784), dtype=np.uint8)], [np.zeros(0, dtype=np.int64)]
        train_x = torch.from_numpy(np.concatenate(kept_x))
        train_y = torch.from_numpy(np.concatenate(kept_y))
        kept_x = kept_y = None
    for epoch in range(start, epochs):
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
        # the checkpoint (step: the epochs done), then this epoch's metrics (step: the epoch, from 0): a resumed run
        # keeps the metrics up to its checkpoint's step, so each epoch's appear once
        save_checkpoint(epoch + 1)
        print("epoch %d/%d: %d examples, loss %.4f, accuracy %.4f (%.1f s)" % (
            epoch + 1, epochs, examples, loss_sum / examples, correct / examples, time.monotonic() - t0))
        # the history, for nemesyst-registry metrics RUN_ID (the model's metadata keeps the last epoch's)
        db.log_metric("loss", epoch, loss_sum / examples)
        db.log_metric("train_accuracy", epoch, correct / examples)
        hold_for_stop(db, epoch + 1)
        stop = db.checkpoint_requested()
        if members > 1:  # the members stop at the same epoch
            asked = torch.tensor([1.0 if stop else 0.0])
            dist.all_reduce(asked, op=dist.ReduceOp.MAX)
            stop = bool(asked.item() > 0)
        if stop:
            raise SystemExit("stopping: checkpoint after epoch %d" % (epoch + 1))
    seconds = seconds_before + time.monotonic() - t_start
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
