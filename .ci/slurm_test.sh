#!/usr/bin/env bash
# The SLURM profile on a real SLURM cluster: one node, this machine.
#
# Installs SLURM and munge when missing (Debian's slurm-wlm and munge, as root), starts
# munged, slurmctld and slurmd, runs the tiny workflow config (tests/workflow/tiny.yaml)
# through profiles/slurm with its requests capped to this node (.ci/slurm_caps.py), and
# checks that
#   - every job of the DAG that is not a local rule went through sbatch, exactly once,
#     and ended COMPLETED (squeue lists finished jobs: MinJobAge below);
#   - every submitted job left its SLURM log under .snakemake/slurm_logs;
#   - every trace validates (`python -m casbo_bench validate`), the tables and figures
#     exist, and a second dry run has nothing left to do.
# It stops the daemons it started, by process id, however it ends.
#
#   sudo bash .ci/slurm_test.sh            # from the repository, after `make venv`
#
# Environment: VENV (default .venv); SLURM_TEST_KEEP=1 keeps the run folder;
# SLURM_TEST_TIMEOUT_S (default 1200) bounds the workflow run.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$REPO/.venv}
CONFIG=$REPO/tests/workflow/tiny.yaml
PROFILE=$REPO/profiles/slurm
SLURM_CONF=/etc/slurm/slurm.conf
MARKER="# Written by casbo-bench .ci/slurm_test.sh"
PARTITION=ci
RUN_TIMEOUT_S=${SLURM_TEST_TIMEOUT_S:-1200}
START=$(date +%s)

say() { echo "slurm_test: $*"; }
fail() {
    echo "slurm_test: FAILED: $*" >&2
    exit 1
}

[[ $EUID -eq 0 ]] || fail "run as root: it installs SLURM and starts munged, slurmctld and slurmd"
[[ -x $VENV/bin/snakemake ]] || fail "no $VENV/bin/snakemake; run 'make venv' first"
"$VENV/bin/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null ||
    fail "snakemake-executor-plugin-slurm is not installed in $VENV; run 'make venv'"

# --- install -------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
for daemon in slurmctld slurmd; do
    if pid=$(pgrep -x "$daemon"); then
        fail "a $daemon is already running (pid ${pid//$'\n'/ }); this test starts its own one-node cluster, stop it first"
    fi
done
if [[ -e $SLURM_CONF ]] && ! head -n 1 "$SLURM_CONF" | grep -qF "$MARKER"; then
    fail "$SLURM_CONF exists and was not written by this test; refusing to overwrite a real cluster's config"
fi

WORK=$(mktemp -d /tmp/casbo-slurm.XXXXXX)
mkdir -p "$WORK/state" "$WORK/spool" "$WORK/log" "$WORK/run"
STARTED_PIDS=()
WROTE_CONF=0

stop_started() {
    local status=$?
    local pid
    if [[ $WROTE_CONF -eq 1 ]] && scontrol ping >/dev/null 2>&1; then
        if [[ $status -ne 0 ]]; then
            echo "slurm_test: cluster state at failure:" >&2
            sinfo -N -o '%N %T %C %m %E' >&2 || true
            squeue -t all -o '%i %T %r %k' >&2 || true
        fi
        # Jobs still queued or running (a failed or timed-out run) end with the cluster.
        squeue -h -o %i | xargs -r scancel 2>/dev/null || true
    fi
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    [[ $WROTE_CONF -eq 1 ]] && rm -f "$SLURM_CONF"
    if [[ $status -ne 0 ]]; then
        echo "slurm_test: logs kept in $WORK; last lines:" >&2
        for log in "$WORK"/log/*.log "$WORK"/snakemake.log; do
            [[ -f $log ]] && { echo "--- $log" >&2; tail -n 25 "$log" >&2; }
        done
    elif [[ ${SLURM_TEST_KEEP:-0} == 1 ]]; then
        say "run folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap stop_started EXIT

# Wait until "$@" succeeds, at most $1 seconds.
wait_for() {
    local seconds=$1
    shift
    for _ in $(seq $((seconds * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

# --- munge -----------------------------------------------------------------------------
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "munged already running; using it"
else
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey -c -k /etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    # setpriv execs munged itself, so $! is munged's own process id.
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
        >"$WORK/log/munged.log" 2>&1 &
    STARTED_PIDS+=("$!")
    wait_for 10 sh -c 'munge -n | unmunge' || fail "munged did not start (see $WORK/log/munged.log)"
fi

# --- slurm.conf ------------------------------------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc)
# RealMemory below the machine's (slurmd drains a node claiming more than it has).
MEM_TOTAL_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MEMORY_MB=$((MEM_TOTAL_MB * 3 / 4))
mkdir -p /etc/slurm
cat >"$SLURM_CONF" <<EOF
$MARKER: a one-node cluster for the CI test, removed when the test ends.
ClusterName=casbo-ci
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
# Finished jobs stay in squeue for an hour: Snakemake polls their state with squeue
# (there is no accounting database for sacct), and this test counts them there.
MinJobAge=3600
SchedulerType=sched/backfill
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEMORY_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
WROTE_CONF=1

# --- slurmctld and slurmd, in the foreground of their own background jobs ---------------
slurmctld -D -c >"$WORK/log/slurmctld.out" 2>&1 &
STARTED_PIDS+=("$!")
wait_for 30 scontrol ping || fail "slurmctld did not answer"
slurmd -D >"$WORK/log/slurmd.out" 2>&1 &
STARTED_PIDS+=("$!")
node_idle() { [[ $(sinfo -h -n "$HOST" -o %T) == idle ]]; }
wait_for 60 node_idle || fail "node $HOST is not idle: $(sinfo -h -N -o '%N %T %E')"
say "cluster up: node $HOST, $CPUS CPUs, ${REAL_MEMORY_MB} MB, partition $PARTITION ($(($(date +%s) - START)) s)"

# --- the tiny workflow through profiles/slurm -----------------------------------------
export PATH=$VENV/bin:$PATH
mapfile -t CAPS < <(python "$REPO/.ci/slurm_caps.py" "$PROFILE/config.yaml" \
    --partition "$PARTITION" --cpus "$CPUS" --mem-mb "$REAL_MEMORY_MB")
SNAKEMAKE=(
    snakemake --snakefile "$REPO/Snakefile" --directory "$WORK/run"
    --configfile "$CONFIG" --profile "$PROFILE" "${CAPS[@]}"
    --slurm-status-command squeue --slurm-no-account
    --slurm-init-seconds-before-status-checks 1 --slurm-keep-successful-logs
)
cd "$WORK/run"

# Jobs the run must submit, per rule: the dry run's job blocks, less local ones (a block
# headed "localrule", or a target rule with nothing to run: "Shell command: None").
"${SNAKEMAKE[@]}" --dry-run --printshellcmds >"$WORK/dryrun.log" 2>&1 ||
    fail "dry run failed: $(tail -n 5 "$WORK/dryrun.log")"
EXPECTED=$(awk '
    function flush() { if (name != "" && !local_job) print name }
    /^(local)?rule [A-Za-z_][A-Za-z0-9_]*:$/ {
        flush(); name = $2; sub(/:$/, "", name); local_job = ($1 == "localrule"); next
    }
    /^Shell command: None$/ { local_job = 1 }
    END { flush() }' "$WORK/dryrun.log" | sort | uniq -c)
EXPECTED_TOTAL=$(echo "$EXPECTED" | awk '{n += $1} END {print n + 0}')
[[ $EXPECTED_TOTAL -gt 0 ]] || fail "the dry run lists no job to submit"
say "DAG: $EXPECTED_TOTAL job(s) to submit: $(echo "$EXPECTED" | awk '{printf "%s %s; ", $2, $1}')"

RUN_START=$(date +%s)
# A job that can never start (a request above the node) would wait forever: give up first.
timeout --kill-after=120 "$RUN_TIMEOUT_S" "${SNAKEMAKE[@]}" >"$WORK/snakemake.log" 2>&1 ||
    fail "snakemake failed or ran past ${RUN_TIMEOUT_S} s"
say "workflow finished through SLURM in $(($(date +%s) - RUN_START)) s"

# --- checks -----------------------------------------------------------------------------
# Every job known to slurmctld (this cluster is ours alone): id|state|comment, the comment
# being "rule_<name>_wildcards_<...>" as the executor plugin sets it.
squeue -h -t all -o '%i|%T|%k' >"$WORK/squeue.txt"
NOT_COMPLETED=$(awk -F'|' '$2 != "COMPLETED"' "$WORK/squeue.txt")
[[ -z $NOT_COMPLETED ]] || fail "SLURM jobs not COMPLETED: $NOT_COMPLETED"
SUBMITTED=$(awk -F'|' '{print $3}' "$WORK/squeue.txt" | sed -E 's/^rule_//; s/_wildcards_.*$//' |
    sort | uniq -c)
[[ $SUBMITTED == "$EXPECTED" ]] ||
    fail "jobs through sbatch differ from the DAG: expected
$EXPECTED
submitted (squeue)
$SUBMITTED"
LOGS=$(find .snakemake/slurm_logs -name '*.log' -type f | wc -l)
[[ $LOGS -eq $EXPECTED_TOTAL ]] || fail "$LOGS SLURM job logs for $EXPECTED_TOTAL jobs"
grep -q "submitted with SLURM jobid" "$WORK/snakemake.log" || fail "snakemake's log names no SLURM job id"
say "all $EXPECTED_TOTAL jobs went through sbatch and ended COMPLETED"

mapfile -t TRACES < <(find results -path '*/raw/*' -name '*.parquet' | sort)
# One trace per job of rule run (every `casbo-bench run` of the job table).
RUNS=$(echo "$EXPECTED" | awk '$2 == "run" {n += $1} END {print n + 0}')
[[ ${#TRACES[@]} -eq $RUNS && $RUNS -gt 0 ]] ||
    fail "${#TRACES[@]} trace file(s) for $RUNS run job(s)"
python -m casbo_bench validate "${TRACES[@]}" >"$WORK/validate.log" 2>&1 ||
    fail "trace validation: $(cat "$WORK/validate.log")"
mapfile -t TABLES < <(find results -path '*/tables/*' -name '*.csv' -size +0 | sort)
[[ ${#TABLES[@]} -gt 0 ]] || fail "no table was written"
FIGURES=$(find paper_figures -name '*.png' -size +0 | wc -l)
[[ $FIGURES -gt 0 ]] || fail "no figure was drawn"
"${SNAKEMAKE[@]}" --dry-run >"$WORK/dryrun-after.log" 2>&1 ||
    fail "dry run after the run failed: $(tail -n 5 "$WORK/dryrun-after.log")"
grep -q "Nothing to be done" "$WORK/dryrun-after.log" ||
    fail "outputs missing or out of date after the run: $(tail -n 5 "$WORK/dryrun-after.log")"
say "${#TRACES[@]} traces validate; ${#TABLES[@]} CSV tables and $FIGURES PNG figures written"
say "passed in $(($(date +%s) - START)) s"
