# A private single-node Slurm cluster for the tests of slurm/ (sourced by tests/slurm/*.sh after tests/env.sh):
# munged (unless one runs), slurmctld and slurmd on ports of their own, state under $T; stopped by the PIDs recorded
# here, whatever happens, after cancelling the jobs left. Helpers: sbatch_wait, usage_of, run_usage.
# SLURM_TEST_NAME names the temporary directory; NEM_KEEP_SLURM_LOGS=DIR keeps the daemons' logs there (debugging).
# SLURM_NETNS_NODES="A B": a cluster of those nodes instead, each a network namespace of that name with its own host
# name (tests/fixtures/netns.sh), one slurmd in each; the sourcing script runs on the first (slurmctld's host).
for b in slurmctld slurmd sbatch munged; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || { echo "$b not installed"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-${SLURM_TEST_NAME:-slurm}.XXXXXX")
chmod 755 "$T"
pids=()
cleanup() {
    local p jobs
    # The jobs first, while this cluster's slurmctld can still end them: their steps' processes are no children
    # of this script (a test that fails early leaves jobs in the background).
    jobs=
    [ "${SLURM_CONF:-}" = "$T/slurm.conf" ] && jobs=$(timeout 5 squeue -h -o %A 2>/dev/null) # this cluster's only
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null
        for _ in $(seq 1 40); do [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.5; done
    fi
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${NEM_KEEP_SLURM_LOGS:-}" ] && cp -r "$T/log" "$NEM_KEEP_SLURM_LOGS" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# munge, with the key the package made: a munged of this cluster's own, on a socket under $T (slurm.conf's
# AuthInfo), so that two test clusters at once (make -j2 check) never share one that the first to end would stop.
[ -r /etc/munge/munge.key ] || { echo "no /etc/munge/munge.key"; exit 77; }
install -d -o munge -g munge -m 755 "$T/munge"
MUNGE_SOCKET="$T/munge/munge.socket"
runuser -u munge -- /usr/sbin/munged -F --socket="$MUNGE_SOCKET" --pid-file="$T/munge/munged.pid" \
    --seed-file="$T/munge/munged.seed" --log-file="$T/munge/munged.log" > "$T/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.1; done
[ -S "$MUNGE_SOCKET" ] || { cat "$T/munged.log"; echo "munged did not start"; exit 1; }

host=$(hostname -s)
# NodeName=... and the hardware of this machine, for each node: "NodeName=N CPUs=... RealMemory=..."
hw=$(/usr/sbin/slurmd -C | head -n1)
hw=${hw#NodeName=* }
read -r -a nodes <<<"${SLURM_NETNS_NODES:-$host}"
node_lines=$(for n in "${nodes[@]}"; do echo "NodeName=$n $hw State=UNKNOWN"; done)
# A node's own files (%n: its name). Several nodes on one machine: PMIx's client directories of a job step go under
# TmpFS by node name, else they would share one (and the first node to end the step would remove it).
mkdir -p "$T/state" "$T/log"
for n in "${nodes[@]}"; do mkdir -p "$T/spool/$n"; done
tmpfs=
if [ ${#nodes[@]} -gt 1 ]; then
    tmpfs="TmpFS=$T/node-tmp/%n"
    for n in "${nodes[@]}"; do mkdir -p "$T/node-tmp/$n"; done
fi
ctl_port=$(nem_random_port); d_port=$(( ctl_port + 1 ))
# Job ids of their own: two test clusters may run at once (make -j2 check), and the PMIx plugin names its
# directories under /tmp by user, job and step, so equal ids would collide.
first_job=$(( (RANDOM % 30000 + 1) * 1000 ))
cat > "$T/slurm.conf" <<EOC
ClusterName=nemesyst-test
SlurmctldHost=$host
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
FirstJobId=$first_job
AuthInfo=socket=$MUNGE_SOCKET
MailProg=/bin/true
KillWait=5
OverTimeLimit=0
ReturnToService=2
EnforcePartLimits=ALL
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool/%n
$tmpfs
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd-%n.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd-%n.log
$node_lines
PartitionName=test Nodes=$(IFS=,; echo "${nodes[*]}") Default=YES MaxTime=UNLIMITED State=UP OverSubscribe=YES
EOC
export SLURM_CONF="$T/slurm.conf"
# `ip netns exec` mounts a sysfs of the namespace's own over /sys, without /sys/fs/cgroup, where slurmd looks for the
# cgroup version (it fails "No filesystem mounted on /sys/fs/cgroup" otherwise): name the plugin instead; it is
# loaded but never used (proctrack/linuxproc, task/none).
[ -n "${SLURM_NETNS_NODES:-}" ] && echo "CgroupPlugin=cgroup/v1" >"$T/cgroup.conf"
/usr/sbin/slurmctld -D -f "$SLURM_CONF" > "$T/log/ctld.out" 2>&1 &
pids+=($!)
for n in "${nodes[@]}"; do
    if [ -n "${SLURM_NETNS_NODES:-}" ]; then # its PID is slurmd's: ip, unshare and sh exec it
        ip netns exec "$n" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$n" \
            /usr/sbin/slurmd -D -f "$SLURM_CONF" > "$T/log/d-$n.out" 2>&1 &
    else
        /usr/sbin/slurmd -D -f "$SLURM_CONF" > "$T/log/d-$n.out" 2>&1 &
    fi
    pids+=($!)
done
slurm_all_idle() { [ "$(timeout 2 sinfo -h -N -o %T 2>/dev/null | grep -c '^idle')" = "${#nodes[@]}" ]; }
for _ in $(seq 1 300); do # up to a minute or more on a loaded machine
    slurm_all_idle && break
    sleep 0.2
done
slurm_all_idle || { tail "$T"/log/*; fail "not every Slurm node became idle: $(timeout 5 sinfo -N 2>&1)"; }

# sbatch_wait NAME SBATCH-OPTIONS... -- SCRIPT ARGS...: sbatch --wait, its exit status in RC, the job's output in $T/NAME.out
sbatch_wait() {
    local name=$1
    shift
    NEMESYST="$NEMESYST" timeout -k 5 300 sbatch --wait --oversubscribe --overcommit -o "$T/$name.out" "$@" \
        >"$T/$name.sbatch" 2>&1
    RC=$?
    echo "== $name: sbatch exit $RC"
    cat "$T/$name.sbatch" "$T/$name.out" 2>/dev/null | tail -n 40
}
# usage_of SCRIPT: the commands of the script's header usage ("#   (umask ..." and "#   sbatch ..." lines, with
# their "\" continuations joined), one a line.
usage_of() {
    awk '/^#SBATCH/ { exit }
         cont { l = substr($0, 2); sub(/^ +/, " ", l); cmd = cmd l }
         !cont && /^#   (\(umask|sbatch )/ { cmd = substr($0, 5); cont = 1 }
         cont { if (cmd ~ /\\$/) sub(/\\$/, "", cmd); else { print cmd; cont = 0 } }' "$1"
}
# The usage lines run in a private home (the password file, an address file, a store), with the test's FerretDB
# binary (the build cache is found through HOME), node-local storage under $T/tmp, ports of their own.
mkdir -p "$T/home" "$T/tmp"
FERRETDB_BIN=$(nem_ferretdb_bin) || fail "no FerretDB binary"
# run_usage NAME DIR OUT [SBATCH-OPTIONS...]: runs slurm/NAME.sbatch's usage lines as written in DIR (with a copy of
# the script unless DIR is the source tree), sbatch waiting for the job and writing its output to OUT; the exit
# status of the last in RC.
run_usage() {
    local name=$1 dir=$2 out=$3
    shift 3
    mkdir -p "$dir"
    [ "$dir" = "$top_srcdir" ] || cp "$top_srcdir/slurm/$name.sbatch" "$dir/"
    (
        cd "$dir" || exit 99
        [ "$dir" = "$top_srcdir" ] || export HOME="$T/home"
        export TMPDIR="$T/tmp" NEMESYST NEMESYST_FERRETDB="$FERRETDB_BIN" N_DB_ENGINE=ferretdb
        # a port of its own for a server the job starts (none for a client of an address file)
        if [ -n "${NO_PORT:-}" ]; then unset N_DB_PORT; else export N_DB_PORT=${N_DB_PORT:-$(nem_random_port)}; fi
        # (timeout runs the sbatch program, not this function)
        sbatch() { timeout -k 5 300 sbatch --wait --oversubscribe --overcommit -o "$out" "${extra[@]}" "$@"; }
        extra=("$@")
        while IFS= read -r line; do
            echo "+ $line"
            eval "$line" || exit
        done < <(usage_of "$top_srcdir/slurm/$name.sbatch")
    ) >"$T/$name-usage.sbatch" 2>&1
    RC=$?
    echo "== $name.sbatch's usage line: exit $RC"
    cat "$T/$name-usage.sbatch" $(ls ${out//%a/*} 2>/dev/null) | tail -n 40
}
