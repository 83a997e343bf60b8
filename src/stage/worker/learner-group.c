/* A learner group's part on one worker rank (learner-group.h). */
#define _GNU_SOURCE
#include "stage/worker/learner-group.h"

#include <bson/bson.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"
#include "stage/message.h"
#include "util/groupwire.h"

typedef enum { M_RUNNING, M_WAITING, M_OK, M_FAILED } mstate_t;

typedef struct {
    int member;
    int fd;                 /* our end of its socket, -1 = none (not a plugin, or closed) */
    mstate_t state;
    nem_group_wire_t hdr;   /* the request being read */
    size_t hdr_got;
    uint8_t *data;
    size_t data_len, data_got;
    int ended;              /* its end, seen while its request was in a header in flight: 0 none, 1 ok, 2 failed */
} member_t;

typedef enum { OP_NONE, OP_HEADER, OP_DATA } op_t;


struct nem_learner_group {
    char label[64];
    int size;
    MPI_Comm comm;
    member_t *m;
    size_t n;
    op_t op;
    MPI_Request req;
    int64_t sh[NEM_GROUP_HEADER_LEN], rh[NEM_GROUP_HEADER_LEN]; /* message.h */
    uint8_t *acc;           /* the local members' combined buffer, reduced in place */
    uint64_t count;
    uint32_t dtype, rop;
    bool over;
    char why[400];
    unsigned long steps;
};

nem_learner_group_t *nem_learner_group_new(const char *label, int size, MPI_Comm comm, size_t nlocal)
{
    nem_learner_group_t *g = bson_malloc0(sizeof *g);
    bson_strncpy(g->label, label, sizeof g->label);
    g->size = size;
    g->comm = comm;
    g->n = nlocal;
    g->m = bson_malloc0((nlocal + 1) * sizeof *g->m);
    for (size_t i = 0; i < nlocal; i++) {
        g->m[i].fd = -1;
        g->m[i].member = -1;
    }
    return g;
}

bool nem_learner_group_attach(nem_learner_group_t *g, size_t slot, int member, bool plugin, int *child_fd, char *why, size_t len)
{
    int sv[2];
    *child_fd = -1;
    if (slot >= g->n)
        return false;
    g->m[slot].member = member;
    if (!plugin)
        return true;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(why, len, "%s member %d: cannot make its allreduce socket: %s", g->label, member, strerror(errno));
        return false;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    g->m[slot].fd = sv[0];
    *child_fd = sv[1];
    return true;
}

static void fail(nem_learner_group_t *g, const char *fmt, ...) BSON_GNUC_PRINTF(2, 3);
static void fail(nem_learner_group_t *g, const char *fmt, ...)
{
    if (g->why[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->why, sizeof g->why, fmt, ap);
    va_end(ap);
}

static void close_member(member_t *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    bson_free(m->data);
    m->data = NULL;
    m->data_len = m->data_got = m->hdr_got = 0;
}

void nem_learner_group_member_ended(nem_learner_group_t *g, size_t slot, bool ok)
{
    if (slot >= g->n || g->m[slot].state == M_OK || g->m[slot].state == M_FAILED)
        return;
    member_t *m = &g->m[slot];
    if (m->state == M_WAITING && g->op == OP_HEADER) {
        /* Its whole request is in, and this rank's header (posted with it) may already be the other ranks' too: if
         * they all agree on the reduction, every rank must then take part in it, with this member's buffer. So it
         * still counts there; it has ended once the header is done (ended_now), which the next header tells. */
        if (!m->ended)
            m->ended = ok ? 1 : 2;
        if (m->fd >= 0)
            close(m->fd);
        m->fd = -1;
        return;
    }
    m->state = ok ? M_OK : M_FAILED;
    close_member(m);
}

/* The ends seen during a header, once it is done (its members' buffers, if reduced, are in g->acc by then). */
static void ended_now(nem_learner_group_t *g)
{
    for (size_t i = 0; i < g->n; i++) {
        member_t *m = &g->m[i];
        if (!m->ended)
            continue;
        m->state = m->ended == 1 ? M_OK : M_FAILED;
        m->ended = 0;
        close_member(m);
    }
}

void nem_learner_group_abort(nem_learner_group_t *g, const char *why)
{
    fail(g, "%s", why);
}

size_t nem_learner_group_fds(const nem_learner_group_t *g, struct pollfd *pfds)
{
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].fd >= 0 && g->m[i].state == M_RUNNING)
            pfds[k++] = (struct pollfd){.fd = g->m[i].fd, .events = POLLIN};
    return k;
}

/* Reads what a running member has sent of its request, without blocking. */
static void read_request(nem_learner_group_t *g, member_t *m)
{
    while (m->state == M_RUNNING && m->fd >= 0) {
        ssize_t r;
        if (m->hdr_got < sizeof m->hdr) {
            r = read(m->fd, (uint8_t *)&m->hdr + m->hdr_got, sizeof m->hdr - m->hdr_got);
        } else {
            r = read(m->fd, m->data + m->data_got, m->data_len - m->data_got);
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) { /* the plugin closed its end: its process is ending, the worker sees how */
            close(m->fd);
            m->fd = -1;
            return;
        }
        if (m->hdr_got < sizeof m->hdr) {
            m->hdr_got += (size_t)r;
            if (m->hdr_got < sizeof m->hdr)
                continue;
            uint32_t es = nem_group_dtype_size(m->hdr.dtype);
            if (m->hdr.magic != NEM_GROUP_MAGIC || !es || m->hdr.op >= NEM_GROUP_NOPS || m->hdr.count == 0 ||
                m->hdr.count > NEM_GROUP_MAX_COUNT) {
                fail(g, "%s member %d: a malformed nemesyst_allreduce request (dtype %u, op %u, count %" PRIu64 ")",
                     g->label, m->member, m->hdr.dtype, m->hdr.op, m->hdr.count);
                return;
            }
            m->data_len = (size_t)m->hdr.count * es;
            m->data = bson_malloc(m->data_len);
            m->data_got = 0;
        } else {
            m->data_got += (size_t)r;
        }
        if (m->hdr_got == sizeof m->hdr && m->data_got == m->data_len)
            m->state = M_WAITING;
    }
}

/* Writes all of buf to a member waiting for it (it reads as we write); a member gone is left to the worker. */
static void write_all(member_t *m, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int64_t deadline = nem_now_ms() + 60000;
    while (len && m->fd >= 0) {
        ssize_t w = send(m->fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR) && nem_now_ms() < deadline) {
            struct pollfd pfd = {.fd = m->fd, .events = POLLOUT};
            poll(&pfd, 1, 100);
            continue;
        }
        return;
    }
}

#define COMBINE(T)                                                                                                 \
    do {                                                                                                           \
        T *a = (T *)(void *)acc;                                                                                   \
        const T *b = (const T *)(const void *)in;                                                                  \
        for (uint64_t i = 0; i < n; i++)                                                                           \
            a[i] = op == 0 ? a[i] + b[i] : op == 1 ? (b[i] > a[i] ? b[i] : a[i]) : (b[i] < a[i] ? b[i] : a[i]);    \
    } while (0)

static void combine(uint8_t *acc, const uint8_t *in, uint64_t n, uint32_t dtype, uint32_t op)
{
    switch (dtype) {
    case 0: COMBINE(float); break;
    case 1: COMBINE(double); break;
    case 2: COMBINE(int32_t); break;
    default: COMBINE(int64_t); break;
    }
}

static MPI_Datatype mpi_type(uint32_t dtype)
{
    return dtype == 0 ? MPI_FLOAT : dtype == 1 ? MPI_DOUBLE : dtype == 2 ? MPI_INT32_T : MPI_INT64_T;
}

static MPI_Op mpi_op(uint32_t op)
{
    return op == 0 ? MPI_SUM : op == 1 ? MPI_MAX : MPI_MIN;
}

/* Whether this rank can post its next header now, and what it says. */
static bool ready_header(nem_learner_group_t *g)
{
    size_t running = 0, waiting = 0, ok = 0;
    int failed = -1;
    member_t *first = NULL;
    for (size_t i = 0; i < g->n; i++) {
        member_t *m = &g->m[i];
        if (m->state == M_RUNNING)
            running++;
        else if (m->state == M_WAITING) {
            if (!first)
                first = m;
            else if (m->hdr.count != first->hdr.count || m->hdr.dtype != first->hdr.dtype ||
                     m->hdr.op != first->hdr.op)
                fail(g, "%s: members %d and %d called nemesyst_allreduce with different arguments (count %" PRIu64
                     " and %" PRIu64 ", dtype %u and %u, op %u and %u)",
                     g->label, first->member, m->member, first->hdr.count, m->hdr.count, first->hdr.dtype,
                     m->hdr.dtype, first->hdr.op, m->hdr.op);
            waiting++;
        } else if (m->state == M_OK)
            ok++;
        else if (failed < 0) /* a member that never started has no index yet: the group's failure, unnamed */
            failed = m->member >= 0 ? m->member : g->size;
    }
    nem_group_header_t h = {0};
    if (failed >= 0 || g->why[0]) { /* without a failed member here, the reason is in why: g->size + 1 says so */
        h.ended = true;
        h.failed = failed >= 0 ? failed + 1 : g->size + 1;
        nem_group_header_encode(&h, g->sh);
        return true;
    }
    if (running)
        return false;
    h.ended = ok > 0;
    if (first) {
        h.count = g->count = first->hdr.count;
        h.dtype = g->dtype = first->hdr.dtype;
        h.op = g->rop = first->hdr.op;
    }
    nem_group_header_encode(&h, g->sh);
    return true;
}

static void post(nem_learner_group_t *g, op_t op)
{
    g->op = op;
    if (g->comm == MPI_COMM_NULL) { /* every member is here: the local values are the group's */
        if (op == OP_HEADER)
            memcpy(g->rh, g->sh, sizeof g->rh);
        g->req = MPI_REQUEST_NULL;
        return;
    }
    if (op == OP_HEADER)
        MPI_Iallreduce(g->sh, g->rh, NEM_GROUP_HEADER_LEN, MPI_INT64_T, MPI_MAX, g->comm, &g->req);
    else
        MPI_Iallreduce(MPI_IN_PLACE, g->acc, (int)g->count, mpi_type(g->dtype), mpi_op(g->rop), g->comm, &g->req);
}

/* The data collective runs once every member has handed its buffer in: nobody computes meanwhile, and a large
 * reduction advances only while MPI is called, so it is tested without a pause for up to DATA_SPIN_MS (one test a
 * millisecond costs a large reduction its many internal steps a millisecond each). A header waits for the members'
 * next step: it is tested once a pass. */
#define DATA_SPIN_MS 20
static bool test(nem_learner_group_t *g)
{
    if (g->req == MPI_REQUEST_NULL)
        return true;
    int done = 0;
    int64_t until = g->op == OP_DATA ? nem_now_ms() + DATA_SPIN_MS : 0;
    do
        MPI_Test(&g->req, &done, MPI_STATUS_IGNORE);
    while (!done && until && nem_now_ms() < until);
    return done != 0;
}

/* What every rank concludes from the same header. */
static void header_done(nem_learner_group_t *g)
{
    nem_group_header_t h;
    int64_t x, y;
    nem_group_verdict_t v = nem_group_header_decode(g->rh, g->size, &h, &x, &y);
    g->op = OP_NONE;
    switch (v) {
    case NEM_GROUP_REDUCE:
        break;
    case NEM_GROUP_VERSION:
        fail(g, "%s: the ranks of the learner group run different nemesyst versions (messages %" PRId64 " to %"
             PRId64 ")", g->label, x, y);
        break;
    case NEM_GROUP_FAILED:
        fail(g, "%s: the learner group of %d failed", g->label, g->size);
        break;
    case NEM_GROUP_MEMBER_FAILED:
        fail(g, "%s: member %" PRId64 " of the learner group of %d failed", g->label, x, g->size);
        break;
    case NEM_GROUP_ENDED_REDUCING:
        fail(g, "%s: a member of the learner group of %d ended while another still called nemesyst_allreduce",
             g->label, g->size);
        break;
    case NEM_GROUP_OVER:
        break;
    case NEM_GROUP_DISAGREE:
        fail(g, "%s: the members of the learner group called nemesyst_allreduce with different arguments (count %"
             PRId64 " to %" PRId64 ")", g->label, x, y);
        break;
    }
    if (v != NEM_GROUP_REDUCE) {
        g->over = true;
        return;
    }
    /* Every member asked for the same reduction: combine the local ones, then across the ranks. */
    bson_free(g->acc);
    g->acc = NULL;
    for (size_t i = 0; i < g->n; i++) {
        member_t *m = &g->m[i];
        if (m->state != M_WAITING)
            continue;
        if (!g->acc) {
            g->acc = m->data;
            m->data = NULL;
        } else {
            combine(g->acc, m->data, g->count, g->dtype, g->rop);
        }
    }
    post(g, OP_DATA);
}

static void data_done(nem_learner_group_t *g)
{
    nem_group_wire_t reply = {NEM_GROUP_MAGIC, g->dtype, g->rop, 0, g->count};
    size_t len = (size_t)g->count * nem_group_dtype_size(g->dtype);
    g->op = OP_NONE;
    g->steps++;
    for (size_t i = 0; i < g->n; i++) {
        member_t *m = &g->m[i];
        if (m->state != M_WAITING)
            continue;
        write_all(m, &reply, sizeof reply);
        write_all(m, g->acc, len);
        bson_free(m->data);
        m->data = NULL;
        m->data_len = m->data_got = m->hdr_got = 0;
        m->state = M_RUNNING;
    }
    bson_free(g->acc);
    g->acc = NULL;
}

void nem_learner_group_progress(nem_learner_group_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        read_request(g, &g->m[i]);
    for (int guard = 0; guard < 4 && !g->over; guard++) {
        if (g->op == OP_NONE) {
            if (!ready_header(g))
                return;
            post(g, OP_HEADER);
        }
        if (!test(g))
            return;
        if (g->op == OP_HEADER) {
            header_done(g);
            ended_now(g);
        } else {
            data_done(g);
        }
    }
}

bool nem_learner_group_busy(const nem_learner_group_t *g)
{
    return g->op != OP_NONE;
}

const char *nem_learner_group_failure(const nem_learner_group_t *g)
{
    return g->why;
}

bool nem_learner_group_over(const nem_learner_group_t *g)
{
    return g->over;
}

unsigned long nem_learner_group_steps(const nem_learner_group_t *g)
{
    return g->steps;
}

void nem_learner_group_destroy(nem_learner_group_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        close_member(&g->m[i]);
    bson_free(g->m);
    bson_free(g->acc);
    if (g->comm != MPI_COMM_NULL)
        MPI_Comm_free(&g->comm);
    bson_free(g);
}
