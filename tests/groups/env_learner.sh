#!/bin/sh
# An executable learner in a learner group: stores a model whose metadata is what its member was told (the
# torch.distributed variables, its group rank and size, its shard), so tests/groups/groups.sh can read it back.
f="$NEMESYST_WORKDIR/model.txt"
echo "member $NEMESYST_GROUP_RANK of $NEMESYST_GROUP_SIZE" >"$f"
printf '{"$nemesyst_model": {"path": "%s", "temp": true, "metadata": {"rank": "%s", "world_size": "%s", "local_rank": "%s", "master_addr": "%s", "master_port": "%s", "group_rank": "%s", "group_size": "%s", "shard_collection": "%s", "shard": %s}}}\n' \
    "$f" "$RANK" "$WORLD_SIZE" "$LOCAL_RANK" "$MASTER_ADDR" "$MASTER_PORT" "$NEMESYST_GROUP_RANK" \
    "$NEMESYST_GROUP_SIZE" "$NEMESYST_SHARD_COLLECTION" "$(printf '%s' "$NEMESYST_SHARD" | sed 's/\$/_/g')"
