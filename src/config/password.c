/* The database password: from --db-password (command line, N_DB_PASSWORD or a config file), a password file, or a
 * no-echo prompt on the terminal. Resolved once on rank 0 and broadcast; never printed or stored. */
#include "config-private.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <unicode/usprep.h>
#include <unicode/ustring.h>

#include "util/fs.h"
#include "util/text.h"

bool nem_secret_file_read(const char *path, const char *option, size_t max, const char *where, char **out,
                          bson_error_t *err)
{
    struct stat st;
    char *text = NULL;
    char prefix[256] = "";
    size_t len = 0, bad;
    if (where)
        snprintf(prefix, sizeof prefix, "%s: ", where);
    /* A regular file only: a FIFO would block, a device never end. Opened without following it into a wait. */
    int fd = nem_open_regular_file(path, max, option, &st, err);
    if (fd < 0) {
        nem_config_rewrap(err, where, NEM_CONFIG_EFILE);
        return false;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                       "%s%s '%s' is accessible by group or others (mode %03o): chmod 600 it", prefix, option, path,
                       (unsigned)(st.st_mode & 0777));
        close(fd);
        return false;
    }
    bool ok = nem_read_fd(fd, path, max, option, &text, &len, err);
    close(fd);
    if (!ok) {
        nem_config_rewrap(err, where, NEM_CONFIG_EFILE);
        return false;
    }
    size_t line = strcspn(text, "\r\n");
    const char *why = NULL;
    if (memchr(text, '\0', len))
        why = "holds a NUL byte";
    else if (line == 0)
        why = len ? "has an empty first line" : "is empty";
    else if (!nem_utf8_valid(text, line, &bad))
        why = "is not valid UTF-8";
    if (why) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s%s '%s' %s", prefix, option, path, why);
        bson_zero_free(text, len + 1);
        return false;
    }
    *out = bson_strndup(text, line);
    bson_zero_free(text, len + 1);
    return true;
}

static bool read_password_file(const char *path, const char *where, char **out, bson_error_t *err)
{
    return nem_secret_file_read(path, "--db-password-file", NEM_PASSWORD_FILE_MAX, where, out, err);
}

static volatile sig_atomic_t prompt_interrupted;

static void on_prompt_signal(int sig)
{
    prompt_interrupted = sig;
}

static bool prompt_password(char **out, bson_error_t *err)
{
    struct termios old, quiet;
    char buf[1024];
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0 || !isatty(fd)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "--db-password asks for a prompt but there is no terminal: use --db-password-file or N_DB_PASSWORD");
        if (fd >= 0)
            close(fd);
        return false;
    }
    FILE *tty = fdopen(fd, "r+");
    fputs("nemesyst: database password: ", tty);
    fflush(tty);
    /* Ctrl-C at the prompt must not leave the terminal without echo: catch it (no SA_RESTART, so fgets returns),
     * restore the terminal, then report. */
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_prompt_signal;
    sigemptyset(&sa.sa_mask);
    prompt_interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    tcgetattr(fd, &old);
    quiet = old;
    quiet.c_lflag &= (tcflag_t)~ECHO;
    tcsetattr(fd, TCSAFLUSH, &quiet);
    char *r = fgets(buf, sizeof buf, tty);
    tcsetattr(fd, TCSAFLUSH, &old);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    fputc('\n', tty);
    fclose(tty);
    if (!r || prompt_interrupted) {
        bson_set_error(err, NEM_ERROR_CONFIG, prompt_interrupted ? NEM_CONFIG_EINTR : NEM_CONFIG_EVALUE, "%s",
                       prompt_interrupted ? "password prompt interrupted" : "no password was entered");
        memset(buf, 0, sizeof buf);
        return false;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    *out = bson_strdup(buf);
    memset(buf, 0, sizeof buf);
    return true;
}

bool nem_config_resolve_password(nem_config_t *cfg, bson_error_t *err)
{
    const char *val = nem_cfg_str(cfg, NEM_OPT_DB_PASSWORD, 0);
    const char *file = nem_cfg_str(cfg, NEM_OPT_DB_PASSWORD_FILE, 0);
    bool b = false, is_bool = val && nem_parse_bool(val, &b);

    if (cfg->password)
        return true;
    /* Both given at different levels: the higher one wins (cli > env > config files), as for any option. */
    if (file && val && cfg->values[NEM_OPT_DB_PASSWORD_FILE].src > cfg->values[NEM_OPT_DB_PASSWORD].src)
        return read_password_file(file, cfg->values[NEM_OPT_DB_PASSWORD_FILE].where, &cfg->password, err);
    if (val && !is_bool && *val) {
        cfg->password = bson_strdup(val);
        return true;
    }
    if (file)
        return read_password_file(file, cfg->values[NEM_OPT_DB_PASSWORD_FILE].where, &cfg->password, err);
    if (is_bool && b)
        return prompt_password(&cfg->password, err);
    return true;
}

/* Where the password came from, as an error names it: "cli: --db-password-file 'pw'", never the password. */
static const char *password_source(const nem_config_t *cfg, char *buf, size_t len)
{
    const nem_value_t *pw = &cfg->values[NEM_OPT_DB_PASSWORD], *file = &cfg->values[NEM_OPT_DB_PASSWORD_FILE];
    bool b;
    if (file->n && (!pw->n || file->src > pw->src || nem_parse_bool(pw->v[0], &b)))
        snprintf(buf, len, "%s: --db-password-file '%s'", file->where, file->v[0]);
    else if (pw->n && !nem_parse_bool(pw->v[0], &b))
        snprintf(buf, len, "%s: --db-password", pw->where);
    else
        snprintf(buf, len, "the password typed at the prompt");
    return buf;
}

bool nem_config_check_password_saslprep(const nem_config_t *cfg, bson_error_t *err)
{
    const char *pw = cfg->password;
    char src[PATH_MAX + 64];
    UErrorCode st = U_ZERO_ERROR;
    UParseError where = {0};
    int32_t n16 = 0;
    bool ok = false;
    if (!pw || !*pw)
        return true;
    u_strFromUTF8(NULL, 0, &n16, pw, -1, &st);
    if (st != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(st)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: the password is not valid UTF-8",
                       password_source(cfg, src, sizeof src));
        return false;
    }
    UChar *in = bson_malloc0(((size_t)n16 + 1) * sizeof(UChar));
    int32_t cap = 4 * n16 + 16;
    UChar *out = bson_malloc0((size_t)cap * sizeof(UChar));
    st = U_ZERO_ERROR;
    u_strFromUTF8(in, n16 + 1, NULL, pw, -1, &st);
    UStringPrepProfile *prep = U_SUCCESS(st) ? usprep_openByType(USPREP_RFC4013_SASLPREP, &st) : NULL;
    if (prep) {
        /* USPREP_DEFAULT: unassigned code points are refused, as RFC 4013 asks of stored strings. */
        int32_t len = usprep_prepare(prep, in, n16, out, cap, USPREP_DEFAULT, &where, &st);
        const char *why = st == U_STRINGPREP_PROHIBITED_ERROR  ? "is one SASLprep prohibits (a control, private-use, "
                                                                 "non-character or tagging code point)"
                          : st == U_STRINGPREP_UNASSIGNED_ERROR ? "is unassigned in SASLprep's Unicode 3.2"
                          : st == U_STRINGPREP_CHECK_BIDI_ERROR ? "breaks SASLprep's rule for right-to-left text"
                                                                : NULL;
        if (U_SUCCESS(st) && len == 0)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                           "%s: the password is empty after SASLprep (it holds only characters SCRAM maps to nothing)",
                           password_source(cfg, src, sizeof src));
        else if (U_SUCCESS(st))
            ok = true;
        else if (why)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                           "%s: character %d of the password %s, so SCRAM cannot use it: choose another password",
                           password_source(cfg, src, sizeof src), u_countChar32(in, where.offset > 0 ? where.offset : 0) + 1, why);
        else
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: SASLprep of the password failed: %s",
                           password_source(cfg, src, sizeof src), u_errorName(st));
        usprep_close(prep);
    } else {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "cannot load ICU's SASLprep profile: %s",
                       u_errorName(st));
    }
    memset(in, 0, (size_t)n16 * sizeof(UChar));
    memset(out, 0, (size_t)cap * sizeof(UChar));
    bson_free(in);
    bson_free(out);
    return ok;
}
