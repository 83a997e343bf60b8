# The linear model of linear_torch.py with checkpoints, as a PyTorch learner group's member (gloo):
# tests/groups/groups-checkpoint.sh. Full-batch gradient descent with momentum (torch.optim.SGD, whose buffer is
# state); each step's gradient sums and counts are added over the group by all_reduce. Steps are numbered 1..epochs
# (the metric "step" of step k is w[0] after it, logged by member 0).
#   Every member loads the newest checkpoint (db.load_checkpoint: torch.save of the weights, the optimizer and the
#   step), checks with all_reduce (MIN and MAX) that the whole group loaded the same step, weights and optimizer
#   state, and logs "member M goes on from step S (weights W)". Every NEM_T_EVERY steps (default 25) the group
#   saves one (db.save_checkpoint: member 0 stores it, the others return at once). Each step the members agree (MAX)
#   on whether any was asked to checkpoint (db.checkpoint_requested()), and then save where they are and end.
#   NEM_T_DIE_AT=S with NEM_T_DIE_MEMBER=M: member M fails at step S in the run's first attempt; NEM_T_SLEEP_MS: a
#   pause after each step; NEM_T_IGNORE_STOP=1: a request to checkpoint is ignored (the group is stopped when its
#   grace is over).
import hashlib
import io
import json
import os
import time

import torch
import torch.distributed as dist

LR = 0.2


def main(**kwargs):
    args, db = kwargs["args"], kwargs["db"]
    got = db.load_checkpoint()
    i = args["process"]
    rank, size = db.group
    coll = args["dl_data_collection"][min(i, len(args["dl_data_collection"]) - 1)]
    pipeline = args["dl_data_pipeline"][min(i, len(args["dl_data_pipeline"]) - 1)]
    pipeline = json.loads(pipeline) if isinstance(pipeline, str) else pipeline
    epochs = int(args["dl_epochs"][min(i, len(args["dl_epochs"]) - 1)])
    every = int(os.environ.get("NEM_T_EVERY", "25"))
    die, dier = int(os.environ.get("NEM_T_DIE_AT", "-1")), int(os.environ.get("NEM_T_DIE_MEMBER", "1"))
    first = os.environ.get("NEMESYST_ATTEMPT", "1") == "1"
    sleep_s = int(os.environ.get("NEM_T_SLEEP_MS", "0")) / 1000.0
    if size > 1:
        dist.init_process_group("gloo")

    def allreduce(t, op=None):
        if size > 1:
            dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
        return t

    xs, ys = [], []
    for d in db.getCursor(db_collection_name=coll, db_pipeline=pipeline):
        xs.append(list(d["x"]))
        ys.append(d["y"])
    dim = int(allreduce(torch.tensor([len(xs[0]) if xs else 0], dtype=torch.int64), dist.ReduceOp.MAX).item())
    x = torch.tensor(xs, dtype=torch.float64).reshape(len(xs), dim)
    y = torch.tensor(ys, dtype=torch.float64)
    w = torch.zeros(dim + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=LR, momentum=0.9)

    def save(step):
        buf = io.BytesIO()
        torch.save({"w": w.detach().clone(), "optimizer": opt.state_dict(), "step": step}, buf)
        db.save_checkpoint(buf.getvalue(), step, {"kind": "linear_torch"})

    start = 0
    if got is not None:
        data, start, _ = got
        state = torch.load(io.BytesIO(data))
        with torch.no_grad():
            w.copy_(state["w"])
        opt.load_state_dict(state["optimizer"])
    # the same step, weights and momentum on every member
    buf = opt.state.get(w, {}).get("momentum_buffer")
    mine = torch.cat([w.detach(), buf if buf is not None else torch.zeros(dim + 1, dtype=torch.float64),
                      torch.tensor([float(start)], dtype=torch.float64)])
    lo, hi = allreduce(mine.clone(), dist.ReduceOp.MIN), allreduce(mine.clone(), dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise RuntimeError("member %d: the members loaded different checkpoints" % rank)
    print("member %d goes on from step %d (weights %s)"
          % (rank, start, hashlib.sha256(mine.numpy().tobytes()).hexdigest()[:16]))

    for k in range(start + 1, epochs + 1):
        r = x @ w.detach()[:dim] + w.detach()[dim] - y
        g = torch.cat([2 * (r @ x), (2 * r.sum()).reshape(1), torch.tensor([float(len(ys))], dtype=torch.float64)])
        allreduce(g)
        w.grad = g[:dim + 1] / g[dim + 1]
        opt.step()
        if rank == 0:
            db.log_metric("step", k, float(w[0]))
        if every > 0 and k % every == 0:
            save(k)
        if first and k == die and rank == dier:
            raise RuntimeError("member %d stopped at step %d (test)" % (rank, k))
        asked = db.checkpoint_requested() and not os.environ.get("NEM_T_IGNORE_STOP")
        asked = allreduce(torch.tensor([1 if asked else 0], dtype=torch.int32), dist.ReduceOp.MAX)
        if int(asked.item()):
            save(k)
            raise SystemExit("member %d: asked to stop, checkpoint at step %d" % (rank, k))
        if sleep_s:
            time.sleep(sleep_s)
    if size > 1:
        dist.destroy_process_group()
    yield ({"kind": "linear", "framework": "pytorch", "member": rank, "size": size, "started_at": start,
            "w": [float(v) for v in w.detach()]}, w.detach().numpy().tobytes())
