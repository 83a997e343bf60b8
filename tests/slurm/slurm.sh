#!/bin/bash
# Slurm: a private single-node cluster (munged, slurmctld, slurmd) runs slurm/nemesyst.sbatch with sbatch --wait:
# two tasks through srun --mpi=pmix, a cleaning stage into the test's FerretDB. Checks the job's exit status and the
# documents read back. Daemons are stopped by the PIDs recorded here, whatever happens.
. ./tests/env.sh
set -u
for b in slurmctld slurmd sbatch munged; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || { echo "$b not installed"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-slurm.XXXXXX")
chmod 755 "$T"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT

# munge, with the key the package made; started here unless one already runs.
if [ ! -S /run/munge/munge.socket.2 ]; then
    [ -r /etc/munge/munge.key ] || { echo "no /etc/munge/munge.key"; exit 77; }
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- /usr/sbin/munged -F > "$T/munged.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
fi

host=$(hostname -s)
node=$(/usr/sbin/slurmd -C | head -n1)
ctl_port=$(nem_random_port); d_port=$(( ctl_port + 1 ))
mkdir -p "$T/state" "$T/spool" "$T/log"
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
MailProg=/bin/true
ReturnToService=2
EnforcePartLimits=ALL
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
$node State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=UNLIMITED State=UP OverSubscribe=YES
EOC
export SLURM_CONF="$T/slurm.conf"
/usr/sbin/slurmctld -D -f "$SLURM_CONF" > "$T/log/ctld.out" 2>&1 &
pids+=($!)
/usr/sbin/slurmd -D -f "$SLURM_CONF" > "$T/log/d.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do # up to a minute or more on a loaded machine
    timeout 2 sinfo -h -o %T 2>/dev/null | grep -q idle && break
    sleep 0.2
done
timeout 5 sinfo -h -o %T | grep -q idle || { tail "$T"/log/*; fail "the Slurm node never became idle"; }

cat > "$T/clean.sh" <<'EOS'
#!/bin/sh
for i in 1 2 3 4; do echo "{\"i\": $i, \"slurm_job\": \"$SLURM_JOB_ID\"}"; done
EOS
chmod +x "$T/clean.sh"
cd "$T"
NEMESYST="$NEMESYST" timeout -k 5 120 sbatch --wait --ntasks=2 --overcommit -o "$T/job.out" \
    "$top_srcdir/slurm/nemesyst.sbatch" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name slurmtest \
    --data-clean --data-cleaner "$T/clean.sh" "$T/clean.sh" --data-collection c >"$T/sbatch.out" 2>&1
rc=$?
cat "$T/sbatch.out" "$T/job.out"
[ $rc -eq 0 ] || fail "sbatch --wait exited $rc"
n=$("$PYTHON3" -c "import pymongo,sys; c=pymongo.MongoClient('127.0.0.1', $NEM_TEST_PORT)['slurmtest']['c']; \
print(c.count_documents({'slurm_job': {'\$ne': ''}, '_nemesyst.s': {'\$exists': True}}))")
[ "$n" = 8 ] || fail "want 8 documents written inside the Slurm job, found $n"
grep -q "2 script(s), 0 failed" "$T/job.out" || fail "no summary in the job output"
echo "slurm: ok"
