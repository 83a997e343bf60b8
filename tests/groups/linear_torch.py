# The linear model of linear_plugin.c as a PyTorch learner group's member: full-batch gradient descent whose
# gradient sums and counts torch.distributed (gloo) adds over the group; nemesyst sets MASTER_ADDR, MASTER_PORT,
# RANK, WORLD_SIZE and LOCAL_RANK, and the adapter's getCursor reads this member's shard. Alone, no process group.
#   NEM_T_CRASH_MEMBER=M with NEM_T_CRASH_FILE=F (F exists): member M raises at step 3, while the others wait in
#   all_reduce for it. NEM_T_HANG_MEMBER=H and NEM_T_FAIL_MEMBER=F: member H sleeps 300 s before anything (a long
#   step outside any collective) and member F fails at once.
import json
import os
import time

import torch
import torch.distributed as dist

LR = 0.5


def main(**kwargs):
    args, db = kwargs["args"], kwargs["db"]
    i = args["process"]
    rank, size = db.group
    coll = args["dl_data_collection"][min(i, len(args["dl_data_collection"]) - 1)]
    pipeline = args["dl_data_pipeline"][min(i, len(args["dl_data_pipeline"]) - 1)]
    pipeline = json.loads(pipeline) if isinstance(pipeline, str) else pipeline
    epochs = int(args["dl_epochs"][min(i, len(args["dl_epochs"]) - 1)])
    if int(os.environ.get("NEM_T_FAIL_MEMBER", "-1")) == rank:
        raise RuntimeError("member %d fails at once, on purpose" % rank)
    if int(os.environ.get("NEM_T_HANG_MEMBER", "-1")) == rank:
        time.sleep(300)
    if size > 1:
        dist.init_process_group("gloo")
        if (dist.get_rank(), dist.get_world_size()) != (rank, size):
            raise RuntimeError("torch.distributed sees rank %d of %d, nemesyst %d of %d"
                               % (dist.get_rank(), dist.get_world_size(), rank, size))
    xs, ys = [], []
    for batch in db.getBatches(db_batch_size=256, db_data_cursor=db.getCursor(db_collection_name=coll,
                                                                              db_pipeline=pipeline)):
        for d in batch:
            xs.append(list(d["x"]))
            ys.append(d["y"])
    d = torch.tensor([len(xs[0]) if xs else 0], dtype=torch.int64)
    if size > 1:
        dist.all_reduce(d, op=dist.ReduceOp.MAX)
    dim = int(d.item())
    x = torch.tensor(xs, dtype=torch.float64).reshape(len(xs), dim)
    y = torch.tensor(ys, dtype=torch.float64)
    w = torch.zeros(dim + 1, dtype=torch.float64)
    crash = os.environ.get("NEM_T_CRASH_FILE")
    for e in range(epochs):
        if crash and os.path.exists(crash) and int(os.environ.get("NEM_T_CRASH_MEMBER", "-1")) == rank and e == 3:
            raise RuntimeError("member %d crashes on purpose at step %d" % (rank, e))
        r = x @ w[:dim] + w[dim] - y
        g = torch.cat([2 * (r @ x), (2 * r.sum()).reshape(1), torch.tensor([float(len(ys))], dtype=torch.float64)])
        if size > 1:
            dist.all_reduce(g)
        w -= LR * g[:dim + 1] / g[dim + 1]
        if rank == 0:
            db.log_metric("step", e, float(w[0]))
    if size > 1:
        dist.destroy_process_group()
    yield ({"kind": "linear", "framework": "pytorch", "member": rank, "size": size, "local_count": len(ys),
            "w": [float(v) for v in w]}, w.numpy().tobytes())
