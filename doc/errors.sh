#!/bin/bash
# Writes nemesyst-errors(7): every case of the test suite's bad-input catalogue (DIR/cases.tsv) run against the
# built nemesyst, as tests/badinput/badinput.sh runs them (each in an empty directory of its own, with its setup,
# no site config files, no N_* variables, stdin from /dev/null), with the whole line nemesyst printed; then the
# catalogue of bad script output (DIR/scripts.tsv), whose cases need a server and so show the text their run
# record's error holds. No case needs a server or starts anything. A case whose arguments start with
# nemesyst-registry runs the nemesyst-registry next to NEMESYST. Usage: errors.sh NEMESYST VERSION DIR
set -u
nemesyst=${1:?usage: errors.sh NEMESYST VERSION DIR}
version=${2:?usage: errors.sh NEMESYST VERSION DIR}
dir=${3:?usage: errors.sh NEMESYST VERSION DIR}
case $nemesyst in /*) ;; *) nemesyst=$PWD/$nemesyst ;; esac
[ -x "$nemesyst" ] && [ -r "$dir/cases.tsv" ] && [ -r "$dir/scripts.tsv" ] ||
    { echo "errors.sh: no $nemesyst or no catalogue in $dir" >&2; exit 1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-errors.XXXXXX") || exit 1
trap 'chmod -R u+rwx "$root" 2>/dev/null; rm -rf "$root"' EXIT
mkdir "$root/sysconf"
export NEMESYST_SYSCONFDIR="$root/sysconf"
for v in $(compgen -e); do
    case $v in N_*) unset "$v" ;; esac
done
export LC_ALL=C

# The helpers the catalogue's setup and arguments use: the same as badinput.sh's (tests/cli/docs.sh checks that
# every helper badinput.sh defines is defined here too).
mk() { printf -- "$2" > "$1"; }
pw() { mk "$1" "$2" && chmod 600 "$1"; }
rep() { head -c "$2" /dev/zero | tr '\0' "$1"; }
fill() { rep '#' "$2" > "$1"; }
chain() { # the same files as badinput.sh's loop makes, written by one awk (10,000 of them in a blink)
    awk -v n="$1" 'BEGIN {
        for (i = 1; i < n; i++) { f = "c" i ".conf"; print "config = c" (i + 1) ".conf" > f; close(f) }
        f = "c" n ".conf"; print "db-name = end" > f; close(f) }'
}
nest() { rep '[' "$1"; rep ']' "$1"; }

# troff-escaped text: \ as \e, a leading . or ' guarded by \&
esc() { awk '{ gsub(/\\/, "\\e"); if ($0 ~ /^[.\047]/) $0 = "\\&" $0; print }'; }
# a case's tag: NAME in bold, then (WHAT)
tag() { printf '\\fB%s\\fR (%s)\n' "${1//\\/\\e}" "$2"; }

ncases=$(grep -v '^#' "$dir/cases.tsv" | awk -F '\t' 'NF >= 4' | wc -l)
nscripts=$(grep -v '^#' "$dir/scripts.tsv" | awk -F '\t' 'NF >= 4' | wc -l)
cat <<EOF
.TH NEMESYST-ERRORS 7 "" "nemesyst $version" "Miscellaneous Information Manual"
.SH NAME
nemesyst-errors \\- every bad input nemesyst refuses, with the line it prints, and every kind of bad script output
.SH DESCRIPTION
Bad input (options, N_* variables, config files, values, names, pipelines, password, TLS and log files) is refused
before anything starts: no server, no script, no password prompt. nemesyst exits with status 2 (each case below
shows its status: --check-server that finds no server is 3) and prints one line on standard error that names
where the value came from (\\fBcli\\fR, \\fBenv N_X\\fR, \\fIFILE\\fR:\\fILINE\\fR, \\fBdefault\\fR), the
option and the rule it breaks. No input makes it hang or crash.
.PP
Below are the $ncases cases of the test suite's catalogue (tests/badinput/cases.tsv in the source tree), each with the
command line it runs and the line nemesyst printed for it when this page was built. A case runs in an empty
directory, shown as \\fB\$PWD\\fR; its setup, when it has one, makes the files it names first. The setup is shell
with these helpers: \\fBmk\\fR \\fIFILE FORMAT\\fR writes printf \\fIFORMAT\\fR to \\fIFILE\\fR; \\fBpw\\fR the same
with mode 0600 (a password file); \\fBrep\\fR \\fIC N\\fR prints \\fIC\\fR \\fIN\\fR times; \\fBfill\\fR \\fIFILE N\\fR
writes \\fIN\\fR bytes to \\fIFILE\\fR; \\fBchain\\fR \\fIN\\fR makes c1.conf, which includes c2.conf, and so on to
c\\fIN\\fR.conf; \\fBnest\\fR \\fIN\\fR prints \\fIN\\fR nested JSON arrays.
EOF

# Every case first, several at once (each in its own directory; its first line of stderr and its status kept in
# case-N.err and case-N.rc), then the page in the catalogue's order.
run_case() { # N SETUP ARGS
    local d="$root/case-$1"
    mkdir "$d"
    (
        cd "$d" || exit 99
        eval "$2" || exit 98
        eval "set -- $3" || exit 98
        prog=$nemesyst
        [ "${1:-}" = nemesyst-registry ] && { prog=$(dirname "$nemesyst")/nemesyst-registry; shift; }
        exec timeout -k 5 20 "$prog" "$@"
    ) > /dev/null 2> "$d.stderr" < /dev/null
    echo $? > "$d.rc"
    head -n 1 "$d.stderr" | sed "s|$d|\$PWD|g; s|$root/sysconf|/etc|g" > "$d.err"
    chmod -R u+rwx "$d" 2>/dev/null
    rm -rf "$d" "$d.stderr"
}
jobs_max=$(nproc 2>/dev/null || echo 2)
[ "$jobs_max" -gt 8 ] && jobs_max=8
n=0 running=0
while IFS=$'\t' read -r name want text setup args; do
    case $name in '' | '#'*) continue ;; esac
    n=$((n + 1))
    [ "$setup" = - ] && setup=
    [ "$args" = - ] && args=
    run_case "$n" "$setup" "$args" &
    running=$((running + 1))
    if [ $running -ge "$jobs_max" ]; then
        wait -n
        running=$((running - 1))
    fi
done < "$dir/cases.tsv"
wait

# The section headings are the catalogue's comment lines after its header (the lines before the first case).
n=0 seen=0
while IFS=$'\t' read -r name want text setup args; do
    case $name in
    '') continue ;;
    '#'*)
        [ $seen = 1 ] && { printf '.SS '; printf '%s\n' "${name#\# }" | esc; }
        continue ;;
    esac
    if [ $seen = 0 ]; then
        seen=1
        echo ".SS Cases"
    fi
    n=$((n + 1))
    [ "$setup" = - ] && setup=
    [ "$args" = - ] && args=
    [ -r "$root/case-$n.rc" ] || { echo "errors.sh: case $name did not run" >&2; exit 1; }
    echo ".TP"
    tag "$name" "exit $(cat "$root/case-$n.rc")"
    if [ -n "$setup" ]; then
        printf '%s\n' "setup: $setup" | esc
        echo ".br"
    fi
    case $args in
    nemesyst-registry | "nemesyst-registry "*) printf '%s\n' "$args" | esc ;;
    *) printf '%s\n' "nemesyst $args" | esc ;;
    esac
    echo ".br"
    esc < "$root/case-$n.err"
done < "$dir/cases.tsv"

cat <<EOF
.SH BAD SCRIPT OUTPUT
A stage script that writes bad output or fails in any way fails alone: what it stored is removed, the other scripts
go on, the run exits 4, and its entry in the run record (and the summary nemesyst prints at the end) holds an error
naming the script, its position and why. These $nscripts cases of the test suite (tests/badinput/scripts.tsv) need a
server, so this page shows, for each, the text its error holds, not the whole line.
EOF
echo ".SS Cases"
while IFS=$'\t' read -r name kind entry text body; do
    case $name in '' | '#'*) continue ;; esac
    echo ".TP"
    tag "$name" "$kind"
    printf '%s\n' "the error holds: $text" | esc
done < "$dir/scripts.tsv"
cat <<EOF
.SH SEE ALSO
\\fBnemesyst\\fR(1) (DIAGNOSTICS, EXIT STATUS), \\fBnemesyst\\-registry\\fR(1)
EOF
