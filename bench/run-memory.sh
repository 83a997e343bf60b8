#!/bin/bash
# Peak memory while ingesting: `mpirun -n 2 nemesyst --data-clean` (rank 0 serving the run, rank 1 the worker)
# with an executable cleaner and a C plugin writing N small documents (about 212 bytes), at each N given. Every
# process of the job is sampled (VmHWM in /proc/PID/status, every 50 ms; the high-water mark only grows, so the
# last sample is the peak to within the last 50 ms) and reported by role: mpirun, each rank, the script's
# process. The claim is flat memory: a peak that does not grow with N (documents stream through bounded buffers
# and are never all held), so the ratio column compares each peak against the same role's at the smallest N.
# Usage: bench/run-memory.sh BUILD_DIR [--docs 100000,1000000]     (MPIRUN and PYTHON3 name the programs)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-memory.sh BUILD_DIR [--docs N,...]}" && pwd) || exit 2
shift
sizes=100000,1000000
[ "${1:-}" = --docs ] && sizes=${2:?--docs needs N,...}
case "$sizes" in '' | *[!0-9,]*) echo "run-memory.sh: --docs wants N,..., got '$sizes'" >&2; exit 2 ;; esac
python3=${PYTHON3:-/usr/bin/python3}
mpirun=${MPIRUN:-mpirun}

. "$here/lib.sh"
bench_start memory

"$python3" - "$sizes" "$mpirun" "$build/nemesyst" "$NEM_TEST_PORT" "$here/stage/emit-json.sh" \
    "$build/bench/stage/.libs/bench_plugin.so" "$tmp" <<'PY'
import os, subprocess, sys, time
sizes, mpirun, nem, port, exe, plugin, tmp = sys.argv[1:8]
sizes = [int(s) for s in sizes.split(",") if s]

def tree(root):
    """The pids under root (itself included), from /proc's parent links."""
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    parent[int(p)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out

def role(pid):
    try:
        cmd = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")
        env = open("/proc/%d/environ" % pid, "rb").read().split(b"\0")
    except OSError:
        return None
    name = os.path.basename(cmd[0].decode(errors="replace"))
    if name == "nemesyst":
        rank = [e for e in env if e.startswith(b"OMPI_COMM_WORLD_RANK=")]
        return "rank %s" % (rank[0].split(b"=")[1].decode() if rank else "?")
    if name in ("awk", "mawk", "gawk") or (name == "sh" and any(exe.encode() in c for c in cmd)):
        return "script (awk)"
    if "plugin-host" in name:
        return "script (plugin host)"
    if name in ("mpirun", "orterun", "prterun"):
        return "mpirun"
    if name == "orted":
        return "orted"
    return None

def hwm(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

def peak(kind, script, n):
    env = dict(os.environ, BENCH_STAGE_DOCS=str(n))
    cmd = [mpirun, "--oversubscribe", "-n", "2", nem, "--db-ip", "127.0.0.1", "--db-port", port, "--db-name",
           "bench_memory", "--data-clean", "--data-collection", "m_%s_%d" % (kind, n), "--data-cleaner", script,
           "--log-level", "warn"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "err"), "w"))
    peaks, t0 = {}, time.time()
    while p.poll() is None:
        for pid in tree(p.pid):
            r = role(pid)
            if r:
                peaks[r] = max(peaks.get(r, 0), hwm(pid))
        time.sleep(0.05)
    if p.returncode != 0:
        sys.exit("run-memory.sh: %s at %d documents exited %d: %s" % (kind, n, p.returncode,
                 open(os.path.join(tmp, "err")).read()[-400:]))
    return peaks, time.time() - t0

print("Peak resident memory (VmHWM, MiB) of every process of `mpirun -n 2 nemesyst --data-clean`, by role; "
      "x first = the peak against the same role's at %d documents" % sizes[0])
print("%-8s %10s %8s  %-22s %10s %8s" % ("script", "documents", "wall s", "process", "peak MiB", "x first"))
for kind, script in (("exec", exe), ("plugin", plugin)):
    first = None
    for n in sizes:
        peaks, wall = peak(kind, script, n)
        first = first or peaks
        for r in sorted(peaks):
            base = first.get(r, 0)
            print("%-8s %10d %8.1f  %-22s %10.1f %8s" % (kind, n, wall, r, peaks[r] / 1024.0,
                  "%.2f" % (peaks[r] / base) if base else "-"))
PY
