/* Round packing (pack.h). */
#include "stage/coordinator/pack.h"

#include <string.h>

int nem_pack_workers(const nem_pack_env_t *env)
{
    return env->world_size > 1 ? env->world_size - 1 : 1;
}

size_t nem_pack_slots(const nem_pack_env_t *env)
{
    return (size_t)nem_pack_workers(env) * (size_t)(env->process_pool > 0 ? env->process_pool : 1);
}

const char *nem_pack_host(const nem_pack_env_t *env, int rank)
{
    return env->hosts && rank >= 0 && rank < env->world_size ? env->hosts + (size_t)rank * env->host_len
                                                             : "localhost";
}

void nem_pack_begin(nem_packer_t *p, const nem_pack_env_t *env, nem_round_t *round, nem_stage_t stage, int number)
{
    memset(round, 0, sizeof *round);
    round->stage = stage;
    round->round = number;
    p->env = env;
    p->round = round;
    p->slot = 0;
}

bool nem_pack_fits(const nem_packer_t *p, int k)
{
    return p->slot == 0 || p->slot + (size_t)k <= nem_pack_slots(p->env);
}

int nem_pack_add(nem_packer_t *p, size_t position, int k, char *const *shards)
{
    const nem_pack_env_t *env = p->env;
    nem_round_t *r = p->round;
    int workers = nem_pack_workers(env), group = k > 1 ? (int)nem_round_groups(r) : -1;
    nem_round_task_t *t;
    if (k < 1)
        k = 1;
    r->tasks = bson_realloc(r->tasks, (r->n_tasks + (size_t)k) * sizeof *r->tasks);
    t = &r->tasks[r->n_tasks];
    memset(t, 0, (size_t)k * sizeof *t);
    for (int m = 0; m < k; m++) {
        t[m].position = position;
        t[m].rank = env->world_size > 1 ? 1 + (int)((p->slot + (size_t)m) % (size_t)workers) : 0;
        t[m].member = k > 1 ? m : -1;
        t[m].size = k;
        t[m].group = group;
        t[m].local_size = 1;
    }
    if (k > 1) {
        /* torch.distributed's rendezvous: member 0's host, by name, reachable from the others; loopback when the
         * whole group runs on that host */
        const char *master = nem_pack_host(env, t[0].rank);
        bool one_host = true;
        for (int m = 1; m < k; m++)
            one_host &= !strcmp(nem_pack_host(env, t[m].rank), master);
        for (int m = 0; m < k; m++) {
            const char *host = nem_pack_host(env, t[m].rank);
            t[m].local_rank = t[m].local_size = 0;
            for (int j = 0; j < k; j++)
                if (!strcmp(nem_pack_host(env, t[j].rank), host)) {
                    t[m].local_size++;
                    t[m].local_rank += j < m;
                }
            t[m].master = bson_strdup(one_host ? "127.0.0.1" : master);
            t[m].shard = bson_strdup(shards && shards[m] ? shards[m] : "");
        }
    }
    r->n_tasks += (size_t)k;
    p->slot += (size_t)k;
    return group;
}
