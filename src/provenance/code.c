/* Code lineage (code.h). */
#include "provenance/code.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "provenance/provenance.h"
#include "util/sha256.h"

extern char **environ;

/* Runs argv (looked up on PATH) with stdout into a digest, and its first line into first (may be NULL). Stdin and
 * stderr are /dev/null. True when it exited 0. */
static bool capture(char *const argv[], char *first, size_t first_len, char hex[65], size_t *bytes)
{
    int out[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;
    bool ok = false;
    if (pipe(out) != 0)
        return false;
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    fcntl(out[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        return false;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char buf[65536];
    size_t total = 0, kept = 0;
    bool line_done = first == NULL;
    ssize_t got;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    while ((got = read(out[0], buf, sizeof buf)) > 0 || (got < 0 && errno == EINTR)) {
        if (got <= 0)
            continue;
        EVP_DigestUpdate(md, buf, (size_t)got);
        for (ssize_t i = 0; !line_done && i < got; i++) {
            if (buf[i] == '\n' || kept + 1 >= first_len) {
                line_done = true;
                break;
            }
            first[kept++] = (char)buf[i];
        }
        total += (size_t)got;
    }
    close(out[0]);
    if (first)
        first[kept] = '\0';
    nem_sha256_final_hex(md, hex);
    EVP_MD_CTX_free(md);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (bytes)
        *bytes = total;
    return ok;
}

/* The interpreter a #! line names, resolved through PATH when it is /usr/bin/env NAME. */
static bool interpreter_of(const char *path, char *out, size_t len)
{
    char line[PATH_MAX + 64];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!got || line[0] != '#' || line[1] != '!')
        return false;
    char *p = line + 2, *save = NULL;
    char *prog = strtok_r(p, " \t\r\n", &save);
    if (!prog)
        return false;
    if (strcmp(prog, "/usr/bin/env") == 0 || strcmp(prog, "/bin/env") == 0) {
        char *name = strtok_r(NULL, " \t\r\n", &save);
        while (name && name[0] == '-') /* env's own options (-S) */
            name = strtok_r(NULL, " \t\r\n", &save);
        const char *env_path = getenv("PATH");
        if (!name || !env_path)
            return false;
        char *dirs = bson_strdup(env_path), *s2 = NULL;
        bool found = false;
        for (char *d = strtok_r(dirs, ":", &s2); d && !found; d = strtok_r(NULL, ":", &s2)) {
            snprintf(out, len, "%s/%s", d, name);
            found = access(out, X_OK) == 0;
        }
        bson_free(dirs);
        return found;
    }
    snprintf(out, len, "%s", prog);
    return access(out, X_OK) == 0;
}

static void git_facts(const char *path, bson_t *out)
{
    char dir[PATH_MAX], commit[128] = "", status[8] = "", hex[65], ignored[65];
    size_t status_bytes = 0;
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (slash == path)
        snprintf(dir, sizeof dir, "/");
    char *head[] = {"git", "-C", dir, "rev-parse", "--verify", "HEAD", NULL};
    if (!capture(head, commit, sizeof commit, ignored, NULL) || strlen(commit) < 40)
        return;
    char *st[] = {"git", "-C", dir, "status", "--porcelain", "--untracked-files=no", NULL};
    if (!capture(st, status, sizeof status, ignored, &status_bytes))
        return;
    char *diff[] = {"git", "-C", dir, "diff", "HEAD", NULL};
    if (!capture(diff, NULL, 0, hex, NULL))
        return;
    bson_t g;
    BSON_APPEND_DOCUMENT_BEGIN(out, "git", &g);
    BSON_APPEND_UTF8(&g, "commit", commit);
    BSON_APPEND_BOOL(&g, "dirty", status_bytes > 0);
    BSON_APPEND_UTF8(&g, "diff_sha256", hex);
    bson_append_document_end(out, &g);
}

void nem_code_host_facts(const char *path, bool executable, bson_t *out)
{
    char interp[PATH_MAX + 8], hex[65];
    bson_error_t ignored;
    if (executable && interpreter_of(path, interp, sizeof interp) && nem_sha256_file(interp, hex, &ignored)) {
        bson_t i;
        BSON_APPEND_DOCUMENT_BEGIN(out, "interpreter", &i);
        BSON_APPEND_UTF8(&i, "path", interp);
        BSON_APPEND_UTF8(&i, "sha256", hex);
        bson_append_document_end(out, &i);
    }
    if (path[0] == '/')
        git_facts(path, out);
}
