# A learner group's PyTorch member (README "Learner groups"): linear least squares by full-batch gradient
# descent, the members' gradient sums and counts added by gloo.
import torch, torch.distributed as dist

def main(**kwargs):
    args, db = kwargs["args"], kwargs["db"]
    rank, size = db.group
    if size > 1:
        dist.init_process_group("gloo")          # MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE: set by nemesyst
    i = args["process"]
    cursor = db.getCursor(db_collection_name=args["dl_data_collection"][i],
                          db_pipeline=[{"$project": {"x": 1}}])     # this member's shard only
    x = torch.tensor([d["x"] for d in cursor], dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64)
    for step in range(100):
        g = torch.cat([x.T @ (x @ w - 1), torch.tensor([len(x)], dtype=torch.float64)])
        if size > 1:
            dist.all_reduce(g)                   # the members' sums and counts
        w -= 0.1 * g[:-1] / g[-1]
    yield ({"w": w.tolist()}, w.numpy().tobytes())   # stored once: member 0's
