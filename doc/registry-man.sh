#!/bin/sh
# Writes nemesyst-registry(1) from `nemesyst-registry --help`, so the man page and the help never disagree.
# The help is laid out as a man page already: headings in capitals at the margin; under them, text indented by
# four spaces. SYNOPSIS and EXAMPLES are kept line by line; VERBS, OPTIONS and EXIT STATUS are lists of "TERM  TEXT"
# (the term ends at the first run of two spaces; deeper-indented lines go on with the text); anything else is
# paragraphs. Usage: registry-man.sh NEMESYST-REGISTRY
prog=${1:?usage: registry-man.sh NEMESYST-REGISTRY}
version=$("$prog" --version | awk '{ print $NF }') || exit 1
"$prog" --help | awk -v version="$version" '
    function esc(s) {
        gsub(/\\/, "\\e", s)
        gsub(/-/, "\\-", s)
        if (s ~ /^[.\047]/) s = "\\&" s
        return s
    }
    function close_nf() { if (nf) { print ".fi"; nf = 0 } }
    BEGIN { print ".TH NEMESYST\\-REGISTRY 1 \"\" \"nemesyst " version "\" \"User Commands\"" }
    /^[A-Z][A-Z ]*$/ {
        close_nf()
        section = $0
        print ".SH " section
        mode = (section == "SYNOPSIS" || section == "EXAMPLES") ? "lines" : \
               (section == "VERBS" || section == "OPTIONS" || section == "EXIT STATUS") ? "list" : "text"
        para = 0
        next
    }
    /^[ \t]*$/ { close_nf(); para = 0; next }
    {
        line = $0
        indent = match(line, /[^ ]/) - 1
        text = substr(line, indent + 1)
        if (mode == "lines") {
            if (!nf) { print ".nf"; nf = 1 }
            print esc(text)
        } else if (mode == "list" && indent == 4 && match(text, /  +/)) {
            print ".TP"
            print "\\fB" esc(substr(text, 1, RSTART - 1)) "\\fR"
            print esc(substr(text, RSTART + RLENGTH))
            para = 2
        } else if (mode == "list" && indent > 4 && para == 2) {
            print esc(text)
        } else {
            if (!para || (mode == "list" && para == 2))
                print ".PP"
            print esc(text)
            para = 1
        }
    }
    END { close_nf() }'
