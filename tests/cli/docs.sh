#!/bin/bash
# Docs that agree with the program. Checks, each failure one line naming the option (or the page) and the
# disagreement:
#   - every --option README.md and the man pages name exists: nemesyst's in `nemesyst --help`, nemesyst-registry's
#     in its --help, nemesyst-export's in its usage, and the few of other programs (sbatch, mpirun, configure) in a
#     list below, told apart by the command each appears in;
#   - every default, range ("`--db-port` 1-65535", ">= 1") and set of choices ("`--log-level error|warn`") README
#     states for an option is the option table's (doc/gen-man --table); the man page lists every option of --help
#     with the table's default;
#   - nemesyst(1)'s ENVIRONMENT names every NEMESYST_* variable the sources set for scripts or read, and nothing
#     else of that name; README names every script of slurm/; catalogue counts README states are right;
#   - nemesyst-errors(7) has every case of the bad-input catalogue, with its exit status and its expected text
#     inside the whole message; doc/errors.sh defines every helper badinput.sh's cases may use;
#   - nemesyst-registry(1) has every verb and option of nemesyst-registry --help;
#   - a malformed id given to any verb of nemesyst-registry is exit 2 before any connection (no server there);
#   - a stage script gets nemesyst's environment: CUDA_VISIBLE_DEVICES reaches it.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
T=$(mktemp -d) || exit 99
trap 'rm -rf "$T"' EXIT
REGISTRY="$top_builddir/nemesyst-registry"
EXPORT="$top_builddir/nemesyst-export"
for f in "$top_builddir/doc/nemesyst.1" "$top_builddir/doc/nemesyst-registry.1" "$top_builddir/doc/nemesyst-errors.7"; do
    [ -s "$f" ] || fail "no man page $f (make builds it)"
done
"$top_builddir/doc/gen-man" --table > "$T/table.tsv" || fail "doc/gen-man --table"
"$NEMESYST" --help > "$T/help.txt" || fail "nemesyst --help"
"$REGISTRY" --help > "$T/registry.txt" || fail "nemesyst-registry --help"
: > "$T/export.txt"
[ -x "$EXPORT" ] && { "$EXPORT" --help > "$T/export.txt" 2>&1 || true; }

"$PYTHON3" - "$top_srcdir" "$top_builddir" "$T" <<'PY' || fail "the docs disagree with the program (above)"
import fnmatch, glob, os, re, sys

src, build, tmp = sys.argv[1:4]
fails = []
def fail(msg):
    fails.append(msg)
    print("FAIL: " + msg)

def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()

def deroff(text):
    for a, b in (("\\-", "-"), ("\\fB", ""), ("\\fR", ""), ("\\fI", ""), ("\\(aq", "'"), ("\\&", ""), ("\\e", "\\")):
        text = text.replace(a, b)
    return text

readme = read(os.path.join(src, "README.md"))
man1 = deroff(read(os.path.join(build, "doc/nemesyst.1")))
regman = deroff(read(os.path.join(build, "doc/nemesyst-registry.1")))
errman_raw = read(os.path.join(build, "doc/nemesyst-errors.7"))
help_txt = read(os.path.join(tmp, "help.txt"))
reg_txt = read(os.path.join(tmp, "registry.txt"))
exp_txt = read(os.path.join(tmp, "export.txt"))

# The option table.
table = {}
for line in read(os.path.join(tmp, "table.tsv")).splitlines():
    name, typ, kind, dflt, lo, hi, off, choices = line.split("\t")
    table[name] = dict(type=typ, list=kind == "list", default=None if dflt == "-" else dflt,
                       min=None if lo == "-" else int(lo), max=None if hi == "-" else int(hi),
                       off=None if off == "-" else int(off), choices=None if choices == "-" else choices.split(","))

# Options each program defines.
help_opts = set(re.findall(r"^  (?:-\w, |    )--([a-z0-9-]+)", help_txt, re.M))
if help_opts != set(table) | {"help", "version"}:
    fail("nemesyst --help and the option table differ: %s" % sorted(help_opts ^ (set(table) | {"help", "version"})))
OPT = re.compile(r"(?<![A-Za-z0-9_-])--([a-z*][a-z0-9*-]*)")
nemesyst_opts = help_opts
registry_opts = set(OPT.findall(reg_txt)) | nemesyst_opts
export_opts = set(OPT.findall(exp_txt)) | nemesyst_opts
# Other programs' options that README names, by the command they belong to.
SLURM = {"wait", "nodes", "ntasks", "ntasks-per-node", "time", "array", "output", "signal", "requeue", "open-mode",
         "cpus-per-task", "gpus-per-task", "gres", "mpi", "me", "parsable", "job-name", "export", "partition",
         "account", "dependency"}
MPIRUN = {"oversubscribe", "allow-run-as-root"}
CONFIGURE = {"prefix", "enable-werror", "enable-sanitizers", "enable-parallel-hdf5", "with-hdf5", "without-hdf5"}
PKGCONFIG = {"cflags", "libs", "variable"}
MAKE = {"reps", "docs"}            # BENCH_ARGS="--reps N", BENCH_ROLLBACK_ARGS="--docs N"
PLACEHOLDER = {"key"}              # the config file format's "--key=value"
known = {"nemesyst": nemesyst_opts, "registry": registry_opts, "export": export_opts,
         "mpirun": MPIRUN | nemesyst_opts, "slurm": SLURM, "configure": CONFIGURE, "pkg-config": PKGCONFIG,
         "make": MAKE}
anywhere = set().union(*known.values()) | PLACEHOLDER
COMMANDS = {"nemesyst": "nemesyst", "nemesyst-registry": "registry", "nemesyst-export": "export",
            "nemesyst-mpirun": "mpirun", "mpirun": "mpirun", "sbatch": "slurm", "srun": "slurm", "salloc": "slurm",
            "squeue": "slurm", "scontrol": "slurm", "configure": "configure", "setup.sh": "configure",
            "pkg-config": "pkg-config", "make": "make"}

def exists(name, allowed):
    name = name.rstrip("-") if "*" not in name else name
    if "*" in name:
        return any(fnmatch.fnmatchcase(o, name) for o in allowed)
    return name in allowed

LAUNCHERS = {"mpirun", "slurm"}
OPERATORS = {"&&", "||", "|", ";", "&"}

def check_unit(text, where, start=None, track=True):
    """Options in one command (a code span, or a code line with its continuations), each checked against the
    program it is given to: the command word in command position before it (the first word, one after a shell
    operator or $(, or the program a launcher runs), else start; without track, start throughout."""
    context = start
    command_position = True
    for token in text.split():
        if token in OPERATORS:
            command_position = True
            continue
        opened = token.startswith("$(") or token.startswith("(")
        word = os.path.basename(token.lstrip("$([").rstrip(")];,"))
        if track and (command_position or opened or context in LAUNCHERS) and word in COMMANDS:
            context = COMMANDS[word]
            command_position = False
            continue
        if track and context == "slurm" and word.endswith(".sbatch"):
            context = "nemesyst"   # what follows a script of slurm/ goes to nemesyst
            continue
        command_position = False
        if token.startswith("--"):
            token = token.split("=", 1)[0]    # --db-name=--odd: a value
        for name in OPT.findall(token):
            allowed = known[context] if context else anywhere
            if not exists(name, allowed):
                fail("%s names --%s, %s" % (where, name, "which %s does not take" % context if context
                                            else "which is no option of the programs it documents"))

# README: code blocks line by line (continuations joined), code spans, then the prose around them.
prose = []
in_fence = False
lines = readme.split("\n")
i = 0
while i < len(lines):
    line = lines[i]
    if line.startswith("```"):
        in_fence = not in_fence
        i += 1
        continue
    if in_fence or line.startswith("    "):
        unit, first = line, i
        while unit.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            unit = unit.rstrip()[:-1] + " " + lines[i]
        check_unit(unit, "README.md:%d" % (first + 1))
    else:
        for m in re.finditer(r"`([^`]+)`", line):
            check_unit(m.group(1), "README.md:%d" % (i + 1))
        prose.append(re.sub(r"`[^`]+`", " ", line))
    i += 1
check_unit(" ".join(prose), "README.md (prose)", None, False)
# The man pages: their own program's options (and the config format's --key, and Slurm's in help texts).
known["nemesyst(1)"] = nemesyst_opts | PLACEHOLDER | SLURM
known["nemesyst-registry(1)"] = registry_opts | PLACEHOLDER | SLURM
check_unit(man1, "nemesyst(1)", "nemesyst(1)", False)
check_unit(regman, "nemesyst-registry(1)", "nemesyst-registry(1)", False)

# README: defaults, ranges and choices it states for an option, against the table.
flat = re.sub(r"\s+", " ", readme)
SPAN_OPT = r"`--([a-z*][a-z0-9*-]*)(?:[ =][^`]*)?`"

def table_opts(name):
    return [o for o in table if fnmatch.fnmatchcase(o, name)] if "*" in name else ([name] if name in table else [])

for m in re.finditer(r"(?<!by )\bdefault:? (`[^`]+`|[A-Za-z0-9_.:/~+-]+)", flat):
    before = flat[max(0, m.start() - 200):m.start()]
    before = re.split(r"[.!?] (?=[A-Z`(])", before)[-1]          # this sentence only
    spans = re.findall(SPAN_OPT, before)
    if not spans:
        continue
    value = m.group(1).strip("`").rstrip(".,;:)")
    for name in table_opts(spans[-1]):
        want = table[name]["default"]
        if want != value and not (table[name]["type"] == "bool" and value in ("true", "false") and want == value):
            fail("README.md says --%s defaults to %r; the option table says %r" % (name, value, want))

NUM = r"(-?\d{1,3}(?:,\d{3})+|-?\d+)"
RANGE = re.compile(r"((?:`--[a-z0-9-]+(?: [A-Z_]+)?`(?:,? (?:and|or) |, ))*`--[a-z0-9-]+(?: [A-Z_]+)?`) "
                   r"(?:" + NUM + r" ?(?:-|to) ?" + NUM + r"|>= ?" + NUM + r"|<= ?" + NUM + r"|at least " + NUM + ")")
def num(s):
    return int(s.replace(",", ""))
checked_ranges = 0
for m in RANGE.finditer(flat):
    names = re.findall(r"`--([a-z0-9-]+)", m.group(1))
    lo, hi, ge, le, least = m.group(2, 3, 4, 5, 6)
    for name in names:
        if name not in table:
            continue
        t = table[name]
        checked_ranges += 1
        said = "%s-%s" % (lo, hi) if lo else ">= %s" % (ge or least) if (ge or least) else "<= %s" % le
        if t["min"] is None:
            fail("README.md gives --%s the range %s; the option table gives it none" % (name, said))
        elif lo and (num(lo), num(hi)) != (t["min"], t["max"]):
            fail("README.md gives --%s the range %s; the option table says %d-%d" % (name, said, t["min"], t["max"]))
        elif (ge or least) and num(ge or least) != t["min"]:
            fail("README.md says --%s %s; the option table's least value is %d" % (name, said, t["min"]))
        elif le and num(le) != t["max"]:
            fail("README.md says --%s %s; the option table's greatest value is %d" % (name, said, t["max"]))
if checked_ranges < 5:
    fail("README.md: only %d option ranges found to check (the parser lost them?)" % checked_ranges)

for m in re.finditer(r"`--([a-z0-9-]+) ([A-Za-z0-9_-]+(?:\|[A-Za-z0-9_-]+)+)`", flat):
    name, alts = m.group(1), m.group(2).split("|")
    if name not in table:
        continue
    t = table[name]
    ok = {"true", "false", "yes", "no", "1", "0"} if t["type"] == "bool" else set(t["choices"] or [])
    for a in alts:
        if a not in ok and not (t["choices"] and a.lower() in {c.lower() for c in t["choices"]}):
            fail("README.md offers --%s %s; the option table's choices are %s" % (name, a, sorted(ok)))

# The man page: every option, with the table's default.
for name, t in table.items():
    m = re.search(r"^\.B(?:R -\w \", \")? --" + re.escape(name) + r"\b.*\n(.*)$", man1, re.M)
    if not m:
        fail("nemesyst(1) has no entry for --%s" % name)
        continue
    d = re.search(r" Default: (.*?)\. Environment:", m.group(1))
    if (d.group(1) if d else None) != t["default"] and "password" not in name:
        fail("nemesyst(1) gives --%s the default %r; the option table says %r" % (name, d and d.group(1), t["default"]))

# ENVIRONMENT: the NEMESYST_* variables the sources set for scripts or read, and no others.
env_section = man1[man1.index(".SH ENVIRONMENT"):man1.index(".SH DIAGNOSTICS")]
used = set()
for path in glob.glob(os.path.join(src, "src/**/*.c"), recursive=True):
    text = read(path)
    used |= set(re.findall(r'getenv\("(NEMESYST_[A-Z0-9_]+)"\)', text))
    used |= set(re.findall(r'_path\("(NEMESYST_[A-Z0-9_]+)"', text))
spawn = read(os.path.join(src, "src/stage/runner/runner-spawn.c"))
given = set(re.findall(r'env_set\(env, "([A-Z][A-Z0-9_]+)"', spawn)) | \
        set(re.findall(r'nem_strv_pushf\(env, "([A-Z][A-Z0-9_]+)=', spawn))
for name in sorted(used | given):
    if not re.search(r"\b%s\b" % name, env_section):
        fail("nemesyst(1) ENVIRONMENT does not name %s, which %s" %
             (name, "stage scripts get" if name in given else "nemesyst reads"))
everything = "".join(read(p) for p in glob.glob(os.path.join(src, "src/**/*.[ch]"), recursive=True))
for name in sorted(set(re.findall(r"\bNEMESYST_[A-Z0-9_]+\b", env_section))):
    if name not in everything:
        fail("nemesyst(1) ENVIRONMENT names %s, which nothing in src/ sets or reads" % name)

# README names every Slurm script.
for path in sorted(glob.glob(os.path.join(src, "slurm/*.sbatch"))):
    if os.path.basename(path) not in readme:
        fail("README.md does not name slurm/%s" % os.path.basename(path))

# The bad-input catalogue: counts README states, and every case in nemesyst-errors(7) with its whole message.
def cases(path, text_field):
    out = []
    for line in read(path).splitlines():
        f = line.split("\t")
        if line.startswith("#") or len(f) < 4:
            continue
        out.append((f[0], f[1], f[text_field]))
    return out
catalogue = cases(os.path.join(src, "tests/badinput/cases.tsv"), 2)
scripts = cases(os.path.join(src, "tests/badinput/scripts.tsv"), 3)
for m in re.finditer(r"tests/badinput/(cases|scripts)\.tsv`?,? (\d{1,3}(?:,\d{3})+|\d+) cases", flat):
    n = len(catalogue if m.group(1) == "cases" else scripts)
    if num(m.group(2)) != n:
        fail("README.md says tests/badinput/%s.tsv has %s cases; it has %d" % (m.group(1), m.group(2), n))
entries = {}
for m in re.finditer(r"^\.TP\n\\fB(.*?)\\fR \((.*?)\)\n(.*?)(?=^\.TP|^\.S[HS]|\Z)", errman_raw, re.M | re.S):
    entries[deroff(m.group(1))] = (m.group(2), deroff(m.group(3)))
for name, want, text in catalogue:
    if name not in entries:
        fail("nemesyst-errors(7) lacks the case %s" % name)
        continue
    status, body = entries[name]
    message = [l for l in body.splitlines() if l.startswith(("nemesyst: error: ", "nemesyst-registry: error: "))]
    if status != "exit " + want:
        fail("nemesyst-errors(7): case %s shows %s; the catalogue expects exit %s" % (name, status, want))
    elif not message or text not in message[-1]:
        fail("nemesyst-errors(7): case %s has no whole message holding %r (got %r)" % (name, text, message))
for name, kind, text in scripts:
    if name not in entries or text not in entries[name][1]:
        fail("nemesyst-errors(7) lacks the script case %s with %r" % (name, text))
helpers = set(re.findall(r"^(\w+)\(\) *\{", read(os.path.join(src, "tests/badinput/badinput.sh")), re.M))
mine = set(re.findall(r"^(\w+)\(\) *\{", read(os.path.join(src, "doc/errors.sh")), re.M))
for h in sorted(helpers - mine):
    fail("doc/errors.sh lacks the helper %s() that tests/badinput/badinput.sh gives the catalogue" % h)

# nemesyst-registry(1): every verb and option of its --help.
sections = dict(re.findall(r"^([A-Z][A-Z ]+)\n(.*?)(?=^[A-Z][A-Z ]+\n|\Z)", reg_txt, re.M | re.S))
for term in re.findall(r"^    (\S+(?: [A-Z_]+| --[a-z]+)?)  ", sections.get("VERBS", "") + sections.get("OPTIONS", ""),
                       re.M):
    if term not in regman:
        fail("nemesyst-registry(1) lacks %r of nemesyst-registry --help" % term)
if not sections.get("VERBS"):
    fail("nemesyst-registry --help has no VERBS section")

# --provenance says what the stamp is, as README does.
if "_nemesyst: {s: STAMP}" not in help_txt or "_nemesyst: {s: STAMP}" not in readme:
    fail("--help's --provenance and README.md do not both describe the stamp as _nemesyst: {s: STAMP}")

sys.exit(1 if fails else 0)
PY

# A malformed id is bad arguments (exit 2), refused before any connection: nothing listens on port 1, and a user
# without a password would otherwise be asked for one.
for words in "lineage nothex" "verify nothex" "verify 0123456789abcdef0123456" "run nope" "export nope" \
    "metrics nope" "affected --run nope"; do
    # shellcheck disable=SC2086
    expect_fail 2 "malformed (run|model) id" "$REGISTRY" --db-ip 127.0.0.1 --db-port 1 --db-user-name u $words
done
# diff's two ids likewise: each well formed, and two runs or two models
expect_fail 2 "malformed run or model id 'nope'" "$REGISTRY" --db-ip 127.0.0.1 --db-port 1 --db-user-name u diff nope \
    20260102T030405Z-0123abcd
expect_fail 2 "diff compares two runs or two models" "$REGISTRY" --db-ip 127.0.0.1 --db-port 1 --db-user-name u diff \
    20260102T030405Z-0123abcd 0123456789abcdef01234567

# Scripts get nemesyst's environment (minus secrets): CUDA_VISIBLE_DEVICES reaches a learner as Slurm set it.
printf '#!/bin/sh\nprintf "%%s" "$CUDA_VISIBLE_DEVICES" > "%s/cuda"\n' "$T" > "$T/clean.sh"
chmod +x "$T/clean.sh"
CUDA_VISIBLE_DEVICES=3,7 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name docs --data-clean \
    --data-cleaner "$T/clean.sh" > "$T/run.out" 2>&1 || { cat "$T/run.out"; fail "the environment run"; }
[ "$(cat "$T/cuda" 2>/dev/null)" = 3,7 ] || fail "CUDA_VISIBLE_DEVICES did not reach the script: '$(cat "$T/cuda" 2>/dev/null)'"
echo "docs: ok"
