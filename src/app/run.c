/* Serving, then the stages, in the documented order: --db-init, --db-start, cleaning, learning, predicting,
 * --db-login, --db-stop. The options become plans here, once; nothing below reads an option. */
#include <mpi.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "app/app.h"
#include "app/plan.h"
#include "log/log.h"
#include "serve/serve.h"
#include "stage/stage.h"
#include "util/exitcodes.h"
#include "util/signals.h"

/* Every rank builds its plan from the broadcast configuration; all agree before anything starts. */
static bool plan_everywhere(const nem_world_t *world, const nem_config_t *cfg, nem_run_plan_t *plan)
{
    bson_error_t err = {0};
    int ok = nem_plan_run(cfg, plan, &err), all = 0;
    if (!ok)
        NEM_ERROR("rank %d on %s: %s", world->rank, world->host, err.message);
    nem_mpi_allreduce(&ok, &all, 1, MPI_INT, MPI_MIN);
    if (ok && !all)
        nem_run_plan_clear(plan);
    return all != 0;
}

/* --requeue: a run stopped by a signal (a time limit's warning, a preemption) puts its Slurm job back in the queue
 * once everything is wound down and recorded; the requeued job resumes the run (stage/coordinator/run-record.c). Outside Slurm
 * there is nothing to requeue. */
static void requeue_job(void)
{
    const char *job = getenv("SLURM_JOB_ID");
    if (!job || !*job) {
        NEM_WARN("--requeue: not in a Slurm job; --resume the run to finish it");
        return;
    }
    char *argv[] = {"scontrol", "requeue", (char *)job, NULL};
    pid_t pid;
    int st = 0;
    extern char **environ;
    if (posix_spawnp(&pid, "scontrol", NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) != pid ||
        !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        NEM_ERROR("--requeue: 'scontrol requeue %s' failed: --resume the run to finish it", job);
    else
        NEM_INFO("--requeue: Slurm job %s requeued: it resumes this run when it starts again", job);
}

int nem_app_run(const nem_world_t *world, nem_config_t *cfg)
{
    nem_run_plan_t run;
    nem_serve_plan_t serving;
    nem_serve_t *serve = NULL;
    int status;

    nem_signals_install();
    if (world->rank == 0)
        NEM_DEBUG("nemesyst %s on %d rank(s)", PACKAGE_VERSION, world->size);
    if (!plan_everywhere(world, cfg, &run))
        return NEM_EXIT_USAGE;
    nem_plan_serve(cfg, &run.store, &serving);
    status = nem_serve_begin(world, &serving, &serve);
    if (status < 0) {
        /* Serving says where this rank reaches the server; the run's plan carries it. */
        const char *host = nem_serve_db_host(serve);
        if (host)
            run.store.host = nem_run_plan_keep(&run, host);
        status = nem_stages_run(world, &run);
        status = nem_serve_end(world, &serving, serve, status);
    }
    if (world->rank == 0 && run.requeue && (status == NEM_EXIT_SIGINT || status == NEM_EXIT_SIGTERM))
        requeue_job();
    nem_serve_plan_clear(&serving);
    nem_run_plan_clear(&run);
    return status;
}
