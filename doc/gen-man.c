/* Writes nemesyst(1) from the option table, so the man page and --help never disagree. */
#include <stdio.h>
#include <string.h>

#include "config/options.h"

static void roff(const char *s)
{
    for (; *s; s++) {
        if (*s == '-' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
}

int main(void)
{
    puts(".TH NEMESYST 1 \"\" \"nemesyst " PACKAGE_VERSION "\" \"User Commands\"");
    puts(".SH NAME\nnemesyst \\- distributed deep learning with MongoDB as the data and model store");
    puts(".SH SYNOPSIS\n.B nemesyst\n[\\fIoptions\\fR]\n.br\n.B mpirun \\-n\n\\fIN\\fR\n.B nemesyst\n[\\fIoptions\\fR]");
    puts(".SH DESCRIPTION\nRank 0 resolves the options, owns the database server's life (\\-\\-db\\-init, \\-\\-db\\-start,"
         " \\-\\-db\\-stop, \\-\\-db\\-login) and coordinates the stages; the other ranks run cleaning, learning and"
         " predicting scripts in lockstep rounds. Data and models live in MongoDB; MPI carries control only.");
    puts(".PP\nValues come from, highest priority first: the command line, N_* environment variables, config files"
         " (\\-c files in order, ./nemesyst.d/*.conf, /etc/nemesyst/nemesyst.d/*.conf), defaults."
         " Config lines are \\fB\\-\\-key=value\\fR, \\fBkey = value\\fR, \\fBkey: value\\fR or \\fBkey value\\fR;"
         " lists are \\fB[a, b]\\fR or space separated; # and ; start comments.");
    puts(".SH OPTIONS\n.TP\n.BR \\-h \", \" \\-\\-help\nShow the help and exit.\n.TP\n.BR \\-V \", \" \\-\\-version\n"
         "Print the version and exit.");
    for (int g = 0; g < NEM_G__COUNT; g++) {
        printf(".SS %s\n", nem_group_title((nem_group_t)g));
        for (int i = 0; i < NEM_OPT__COUNT; i++) {
            const nem_option_t *o = &nem_options[i];
            char env[96];
            if (o->group != (nem_group_t)g)
                continue;
            puts(".TP");
            if (o->short_name)
                printf(".BR \\-%c \", \" ", o->short_name);
            else
                printf(".B ");
            fputs("\\-\\-", stdout);
            roff(o->name);
            if (o->type != NEM_T_BOOL) {
                printf(" \" \\fI");
                roff(o->metavar ? o->metavar : "VALUE");
                printf("%s\\fR\"", (o->flags & NEM_F_LIST) ? " ..." : "");
            }
            putchar('\n');
            roff(o->help);
            printf(".");
            if (o->defval && !(o->flags & NEM_F_SECRET)) {
                printf(" Default: ");
                roff(o->defval);
                printf(".");
            }
            nem_option_env_name((nem_opt_id_t)i, env, sizeof env);
            printf(" Environment: \\fB");
            roff(env);
            puts("\\fR.");
        }
    }
    puts(".SH EXIT STATUS\n0 success; 1 runtime failure; 2 bad option, config file, value or path (nothing started);"
         " 3 the database server could not be started, stopped or reached; 4 one or more stage scripts failed;"
         " 130/143 interrupted by SIGINT/SIGTERM.");
    puts(".SH SEE ALSO\nmpirun(1), sbatch(1), mongod(1)");
    return 0;
}
