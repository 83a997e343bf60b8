/* Live OpenLineage events: the emitter (a queue and a sender thread) and the event builders (openlineage.h). */
#include "openlineage/openlineage.h"
#include "config/config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "util/clock.h"
#include "util/errors.h"
#include "util/fs.h"
#include "util/text.h"

/* --- URLs --- */

static bool has_prefix(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

/* file: URLs: file:PATH, file:/PATH, file:///PATH and file://localhost/PATH name PATH. NULL for another host. */
static const char *file_path(const char *url)
{
    const char *p = url + 5;
    if (strncmp(p, "//", 2) != 0)
        return p;
    p += 2;
    if (has_prefix(p, "localhost/"))
        p += 9;
    return *p == '/' ? p : NULL;
}

bool nem_ol_url_ok(const char *url, char *why, size_t len)
{
    for (const char *s = url; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f) {
            snprintf(why, len, "holds a space or a control character");
            return false;
        }
    if (has_prefix(url, "file:")) {
        const char *path = file_path(url);
        if (!path)
            snprintf(why, len, "names another host (file: URLs name a local file: file:///PATH or file:PATH)");
        else if (!*path)
            snprintf(why, len, "names no file");
        else
            return true;
        return false;
    }
    const char *rest = has_prefix(url, "http://") ? url + 7 : has_prefix(url, "https://") ? url + 8 : NULL;
    if (!rest) {
        snprintf(why, len, "is not an http://, https:// or file: URL");
        return false;
    }
    size_t auth = strcspn(rest, "/?#");
    if (memchr(rest, '@', auth)) {
        snprintf(why, len, "holds a user or password: give the API key with --openlineage-api-key-file");
        return false;
    }
    if (auth == 0 || rest[0] == ':' || (rest[0] == '[' && !memchr(rest, ']', auth))) {
        snprintf(why, len, "names no host");
        return false;
    }
    const char *colon = rest[0] == '[' ? (const char *)memchr(rest, ']', auth) : rest;
    colon = memchr(colon, ':', auth - (size_t)(colon - rest));
    if (colon) {
        size_t digits = auth - (size_t)(colon + 1 - rest);
        long port = 0;
        bool ok = digits > 0 && digits <= 5;
        for (size_t i = 0; ok && i < digits; i++) {
            ok = colon[1 + i] >= '0' && colon[1 + i] <= '9';
            port = port * 10 + (colon[1 + i] - '0');
        }
        if (!ok || port < 1 || port > 65535) {
            snprintf(why, len, "has a port that is not 1-65535");
            return false;
        }
    }
    return true;
}

void nem_ol_url_public(const char *url, char *out, size_t len)
{
    const char *rest = has_prefix(url, "http://") ? url + 7 : has_prefix(url, "https://") ? url + 8 : NULL;
    if (!rest) {
        snprintf(out, len, "%s", url);
        return;
    }
    size_t auth = strcspn(rest, "/?#"), path;
    const char *at = NULL;
    for (size_t i = 0; i < auth; i++)
        if (rest[i] == '@')
            at = rest + i;
    const char *host = at ? at + 1 : rest;
    path = strcspn(rest + auth, "?#");
    snprintf(out, len, "%.*s%.*s%.*s", (int)(rest - url), url, (int)(rest + auth - host), host, (int)path,
             rest + auth);
}

bool nem_ol_read_api_key(const char *path, char **key, bson_error_t *err)
{
    return nem_secret_file_read(path, "--openlineage-api-key-file", NEM_OL_API_KEY_MAX, NULL, key, err);
}

/* --- the emitter --- */

typedef struct item {
    struct item *next;
    char *json;
    size_t len;
} item_t;

struct nem_ol {
    char *url, *public_url, *ca_file, *path; /* path: a file: URL's file */
    char *auth;                               /* "Authorization: Bearer KEY" (wiped), or NULL */
    int timeout_ms;
    pthread_t thread;
    bool started, finished;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* an item arrived, stop was asked, or the sender went idle */
    item_t *head, *tail;
    size_t queued;
    bool busy;                /* the sender holds an item */
    bool stop;                /* no more items: end when the queue is empty */
    atomic_bool abort;        /* give up at once: the transfer in flight and the queue */
    bool down;                /* the endpoint failed an event's every try: later events get one try */
    bool warned;
    uint64_t sent, dropped;
    char last_error[256];
    /* the sender's own, kept here rather than on its stack: a process forked meanwhile (the spawner's child, until
     * it execs) has no sender thread, and memory only that thread's stack pointed to would look lost to valgrind */
    CURL *curl;
    struct curl_slist *headers;
    item_t *inflight;
};

static int ol_curl_users; /* nem_ol_new and nem_ol_destroy run on rank 0's one thread only */

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * n;
}

static int progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&((nem_ol_t *)ud)->abort) ? 1 : 0;
}

/* One try of the file: target: the event and its newline in one append. */
static bool send_file(nem_ol_t *ol, const item_t *it)
{
    int fd = open(ol->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) {
        snprintf(ol->last_error, sizeof ol->last_error, "%s", strerror(errno));
        return false;
    }
    char *line = bson_malloc(it->len + 1);
    memcpy(line, it->json, it->len);
    line[it->len] = '\n';
    ssize_t n = write(fd, line, it->len + 1);
    int e = errno;
    bson_free(line);
    close(fd);
    if (n != (ssize_t)(it->len + 1)) {
        snprintf(ol->last_error, sizeof ol->last_error, "%s", n < 0 ? strerror(e) : "short write");
        return false;
    }
    return true;
}

/* One try over HTTP: a 2xx answer within the timeout. *permanent: an answer retrying will not change. */
static bool send_http(nem_ol_t *ol, CURL *curl, struct curl_slist *headers, const item_t *it, bool *permanent)
{
    curl_easy_setopt(curl, CURLOPT_URL, ol->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, it->json);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)ol->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)ol->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, ol);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (ol->ca_file) { /* these CAs instead of the system's: the bundle and the directory libcurl was built with */
        curl_easy_setopt(curl, CURLOPT_CAINFO, ol->ca_file);
        curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    }
    /* libcurl's own account of a failure says which: a certificate no trusted CA signed ("SSL certificate
     * problem: ..."), one for another host name ("SSL: no alternative certificate subject name matches target host
     * name ..."), a refused connection;
     * curl_easy_strerror's is the same for the first two */
    char detail[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        snprintf(ol->last_error, sizeof ol->last_error, "%s", detail[0] ? detail : curl_easy_strerror(rc));
        return false;
    }
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300)
        return true;
    snprintf(ol->last_error, sizeof ol->last_error, "HTTP status %ld", code);
    *permanent = code >= 400 && code < 500 && code != 408 && code != 429;
    return false;
}

/* Waits ms, or less when told to give up; false then. Called with mu held. */
static bool pause_ms(nem_ol_t *ol, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!atomic_load(&ol->abort))
        if (pthread_cond_timedwait(&ol->cv, &ol->mu, &until) == ETIMEDOUT)
            break;
    return !atomic_load(&ol->abort);
}

static void *sender(void *arg)
{
    nem_ol_t *ol = arg;
    pthread_mutex_lock(&ol->mu);
    ol->curl = ol->path ? NULL : curl_easy_init();
    if (ol->curl) {
        ol->headers = curl_slist_append(ol->headers, "Content-Type: application/json");
        if (ol->auth)
            ol->headers = curl_slist_append(ol->headers, ol->auth);
    }
    for (;;) {
        while (!ol->head && !ol->stop)
            pthread_cond_wait(&ol->cv, &ol->mu);
        if (!ol->head)
            break;
        item_t *it = ol->inflight = ol->head;
        ol->head = it->next;
        if (!ol->head)
            ol->tail = NULL;
        ol->queued--;
        ol->busy = true;
        bool ok = false, permanent = false;
        int tries = ol->down ? 1 : NEM_OL_TRIES;
        for (int t = 0; t < tries && !ok && !permanent && !atomic_load(&ol->abort); t++) {
            if (t > 0 && !pause_ms(ol, 200 << t))
                break;
            pthread_mutex_unlock(&ol->mu);
            if (ol->path)
                ok = send_file(ol, it);
            else if (ol->curl)
                ok = send_http(ol, ol->curl, ol->headers, it, &permanent);
            else
                snprintf(ol->last_error, sizeof ol->last_error, "libcurl could not start");
            pthread_mutex_lock(&ol->mu);
        }
        if (ok) {
            ol->sent++;
            ol->down = false;
        } else {
            ol->dropped++;
            ol->down = true;
            if (!ol->warned && !atomic_load(&ol->abort)) {
                ol->warned = true;
                NEM_WARN("--openlineage %s: an event was dropped after %d tr%s (%s); the run goes on, later events "
                         "that fail are dropped too (the run record counts them)",
                         ol->public_url, tries, tries == 1 ? "y" : "ies", ol->last_error);
            }
        }
        ol->inflight = NULL;
        bson_free(it->json);
        bson_free(it);
        ol->busy = false;
        pthread_cond_broadcast(&ol->cv);
    }
    curl_slist_free_all(ol->headers);
    ol->headers = NULL;
    if (ol->curl)
        curl_easy_cleanup(ol->curl);
    ol->curl = NULL;
    pthread_mutex_unlock(&ol->mu);
    return NULL;
}

nem_ol_t *nem_ol_new(const nem_ol_opts_t *opts, bson_error_t *err)
{
    char *key = NULL;
    if (opts->api_key_file && !nem_ol_read_api_key(opts->api_key_file, &key, err))
        return NULL;
    nem_ol_t *ol = bson_malloc0(sizeof *ol);
    ol->url = bson_strdup(opts->url);
    char pub[1024];
    nem_ol_url_public(opts->url, pub, sizeof pub);
    ol->public_url = bson_strdup(pub);
    ol->ca_file = opts->ca_file ? bson_strdup(opts->ca_file) : NULL;
    ol->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 2000;
    if (has_prefix(opts->url, "file:"))
        ol->path = bson_strdup(file_path(opts->url));
    if (key) {
        ol->auth = bson_strdup_printf("Authorization: Bearer %s", key);
        bson_zero_free(key, strlen(key));
    }
    atomic_init(&ol->abort, false);
    pthread_mutex_init(&ol->mu, NULL);
    pthread_cond_init(&ol->cv, NULL);
    /* libcurl's global state (OpenSSL's with it): set up here, on the main thread, before the sender starts, and
     * torn down by the last nem_ol_destroy. */
    if (!ol->path && ol_curl_users++ == 0)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    if (pthread_create(&ol->thread, NULL, sender, ol) != 0) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--openlineage: cannot start its sender thread");
        nem_ol_destroy(ol);
        return NULL;
    }
    ol->started = true;
    return ol;
}

void nem_ol_emit(nem_ol_t *ol, const bson_t *event)
{
    if (!ol || ol->finished)
        return;
    size_t len = 0;
    char *json = bson_as_relaxed_extended_json(event, &len);
    pthread_mutex_lock(&ol->mu);
    if (!json || ol->queued >= NEM_OL_QUEUE_MAX) {
        ol->dropped++;
        bson_free(json);
    } else {
        item_t *it = bson_malloc0(sizeof *it);
        it->json = json;
        it->len = len;
        if (ol->tail)
            ol->tail->next = it;
        else
            ol->head = it;
        ol->tail = it;
        ol->queued++;
        pthread_cond_broadcast(&ol->cv);
    }
    pthread_mutex_unlock(&ol->mu);
}

void nem_ol_finish(nem_ol_t *ol, nem_ol_stats_t *stats)
{
    if (!ol)
        return;
    if (!ol->finished && ol->started) {
        ol->finished = true;
        int64_t deadline = nem_now_ms() + ol->timeout_ms;
        pthread_mutex_lock(&ol->mu);
        ol->stop = true;
        pthread_cond_broadcast(&ol->cv);
        while (ol->head || ol->busy) {
            int64_t left = deadline - nem_now_ms();
            if (left <= 0)
                break;
            pause_ms(ol, (int)(left < 50 ? left : 50));
        }
        /* what is still queued (and the transfer in flight) is given up */
        atomic_store(&ol->abort, true);
        for (item_t *it = ol->head, *next; it; it = next) {
            next = it->next;
            ol->dropped++;
            bson_free(it->json);
            bson_free(it);
        }
        ol->head = ol->tail = NULL;
        ol->queued = 0;
        pthread_cond_broadcast(&ol->cv);
        pthread_mutex_unlock(&ol->mu);
        pthread_join(ol->thread, NULL);
    }
    ol->finished = true;
    if (stats) {
        stats->sent = ol->sent;
        stats->dropped = ol->dropped;
        stats->warned = ol->warned;
        snprintf(stats->last_error, sizeof stats->last_error, "%s", ol->last_error);
    }
}

void nem_ol_destroy(nem_ol_t *ol)
{
    if (!ol)
        return;
    nem_ol_finish(ol, NULL);
    pthread_mutex_destroy(&ol->mu);
    pthread_cond_destroy(&ol->cv);
    if (!ol->path && --ol_curl_users == 0)
        curl_global_cleanup();
    if (ol->auth)
        bson_zero_free(ol->auth, strlen(ol->auth));
    bson_free(ol->url);
    bson_free(ol->public_url);
    bson_free(ol->ca_file);
    bson_free(ol->path);
    bson_free(ol);
}

/* --- building events --- */

void nem_ol_uuid(const char *name, char out[37])
{
    /* nemesyst's namespace: uuid5(NAMESPACE_URL, "https://github.com/nemesyst/nemesyst#openlineage") */
    static const unsigned char ns[16] = {0x1a, 0xea, 0xc5, 0x14, 0x44, 0x50, 0x53, 0xc9,
                                         0xaf, 0x45, 0xa1, 0x6c, 0x71, 0xab, 0x12, 0xf3};
    unsigned char md[SHA_DIGEST_LENGTH];
    size_t n = strlen(name);
    unsigned char *buf = bson_malloc(sizeof ns + n);
    memcpy(buf, ns, sizeof ns);
    memcpy(buf + sizeof ns, name, n);
    SHA1(buf, sizeof ns + n, md);
    bson_free(buf);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 15];
    }
    out[o] = '\0';
}

void nem_ol_facet_begin(bson_t *parent, const char *key, const char *schema_url, bson_t *facet)
{
    BSON_APPEND_DOCUMENT_BEGIN(parent, key, facet);
    BSON_APPEND_UTF8(facet, "_producer", NEM_OL_PRODUCER);
    BSON_APPEND_UTF8(facet, "_schemaURL", schema_url);
}

void nem_ol_dataset(bson_t *array, const char *ns, const char *name, const bson_t *facets, const char *io_key,
                    const bson_t *io_facets)
{
    char idx[16];
    const char *k;
    bson_t d;
    bson_uint32_to_string(bson_count_keys(array), &k, idx, sizeof idx);
    BSON_APPEND_DOCUMENT_BEGIN(array, k, &d);
    BSON_APPEND_UTF8(&d, "namespace", ns);
    BSON_APPEND_UTF8(&d, "name", name);
    if (facets && !bson_empty(facets))
        BSON_APPEND_DOCUMENT(&d, "facets", facets);
    if (io_key && io_facets && !bson_empty(io_facets))
        BSON_APPEND_DOCUMENT(&d, io_key, io_facets);
    bson_append_document_end(array, &d);
}

void nem_ol_event(const nem_ol_event_t *e, bson_t *out)
{
    char when[32];
    bson_t run, facets, f, sub, job, jf;
    nem_iso_ms(e->time_ms, when);
    bson_init(out);
    BSON_APPEND_UTF8(out, "eventType", e->type);
    BSON_APPEND_UTF8(out, "eventTime", when);
    BSON_APPEND_UTF8(out, "producer", NEM_OL_PRODUCER);
    BSON_APPEND_UTF8(out, "schemaURL", NEM_OL_RUN_EVENT);
    BSON_APPEND_DOCUMENT_BEGIN(out, "run", &run);
    BSON_APPEND_UTF8(&run, "runId", e->run_uuid);
    BSON_APPEND_DOCUMENT_BEGIN(&run, "facets", &facets);
    if (e->parent_uuid) {
        nem_ol_facet_begin(&facets, "parent",
                           "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet", &f);
        BSON_APPEND_DOCUMENT_BEGIN(&f, "run", &sub);
        BSON_APPEND_UTF8(&sub, "runId", e->parent_uuid);
        bson_append_document_end(&f, &sub);
        BSON_APPEND_DOCUMENT_BEGIN(&f, "job", &sub);
        BSON_APPEND_UTF8(&sub, "namespace", e->job_ns);
        BSON_APPEND_UTF8(&sub, "name", e->parent_job);
        bson_append_document_end(&f, &sub);
        bson_append_document_end(&facets, &f);
    }
    if (e->error) {
        nem_ol_facet_begin(&facets, "errorMessage",
                           "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/"
                           "ErrorMessageRunFacet", &f);
        BSON_APPEND_UTF8(&f, "message", e->error);
        BSON_APPEND_UTF8(&f, "programmingLanguage", "C");
        bson_append_document_end(&facets, &f);
    }
    if (e->run_facets)
        bson_concat(&facets, e->run_facets);
    bson_append_document_end(&run, &facets);
    bson_append_document_end(out, &run);
    BSON_APPEND_DOCUMENT_BEGIN(out, "job", &job);
    BSON_APPEND_UTF8(&job, "namespace", e->job_ns);
    BSON_APPEND_UTF8(&job, "name", e->job_name);
    BSON_APPEND_DOCUMENT_BEGIN(&job, "facets", &jf);
    nem_ol_facet_begin(&jf, "jobType", "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/"
                                       "JobTypeJobFacet", &f);
    BSON_APPEND_UTF8(&f, "processingType", "BATCH");
    BSON_APPEND_UTF8(&f, "integration", "NEMESYST");
    BSON_APPEND_UTF8(&f, "jobType", e->job_type);
    bson_append_document_end(&jf, &f);
    bson_append_document_end(&job, &jf);
    bson_append_document_end(out, &job);
    bson_t empty = BSON_INITIALIZER;
    BSON_APPEND_ARRAY(out, "inputs", e->inputs ? e->inputs : &empty);
    BSON_APPEND_ARRAY(out, "outputs", e->outputs ? e->outputs : &empty);
    bson_destroy(&empty);
}
