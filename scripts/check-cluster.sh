#!/usr/bin/env bash
# usage: scripts/check-cluster.sh [parallel|slurm|all]   (default all; .ci/run runs all, as root)
# Proves that sharded sweeps give the rows of one sweep, on real tools rather than on paper:
#   parallel  scripts/parallel-sweep.sh with GNU parallel (installed from Debian if missing);
#   slurm     a single-node Slurm cluster started here — munged, slurmctld and slurmd from Debian's slurm-wlm,
#             configured in a temporary folder — running scripts/slurm-sweep.sh exactly as README documents it:
#             a job array, a merge that waits for it (afterok), then one array task cancelled mid-shard, resubmitted
#             alone, and merged again.
# Each merged CSV must hold exactly the (shape, backend) rows of a single-process sweep of the same grid: none missing,
# none twice. Daemons are stopped and every file removed at the end, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
convlab=$PWD/.build/release/convlab
[ -x "$convlab" ] || swift build -c release >&2
work=$(mktemp -d /tmp/convlab-cluster.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { echo "check-cluster: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# A grid of 8 shapes (2 kernels × 2 channel counts × 2 sizes), a few backends each, short timings: seconds per shard.
grid=(--kernels 1,3 --channels 4,8 --sizes 8,12 --batch 1 --backends im2col,direct,winograd-f2x3 --max-time 0.02
      --repeat 1 --no-check --threads 1)
"$convlab" sweep "${grid[@]}" --output "$work/single.csv" 2>/dev/null

# same_rows A B: the (shape, backend, threads) identities of two sweep CSVs are the same set, each row once.
same_rows() {
  python3 - "$1" "$2" <<'PY'
import csv, sys
identity = ["name", "backend", "N", "C", "H", "W", "K", "R", "S", "stride_h", "stride_w", "pad_top", "pad_bottom",
            "pad_left", "pad_right", "dilation_h", "dilation_w", "groups", "threads"]
def keys(path):
    rows = [tuple(r[c] for c in identity) for r in csv.DictReader(open(path, newline=""))]
    return rows, set(rows)
(a, sa), (b, sb) = keys(sys.argv[1]), keys(sys.argv[2])
problems = []
if len(a) != len(sa): problems.append(f"{sys.argv[1]} repeats rows")
if len(b) != len(sb): problems.append(f"{sys.argv[2]} repeats {len(b) - len(sb)} rows")
if sa - sb: problems.append(f"{len(sa - sb)} rows missing, e.g. {sorted(sa - sb)[0][:2]}")
if sb - sa: problems.append(f"{len(sb - sa)} rows extra, e.g. {sorted(sb - sa)[0][:2]}")
if problems:
    print("; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"{len(b)} rows, the same as one sweep", file=sys.stderr)
PY
}

install_missing() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" -eq 0 ] || fail "need root to install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

check_parallel() {
  install_missing parallel
  local start=$SECONDS
  CONVLAB=$convlab THREADS_PER_SHARD=1 scripts/parallel-sweep.sh 3 "$work/parallel/merged.csv" "${grid[@]}" \
    >/dev/null 2>"$work/parallel.log" || { cat "$work/parallel.log" >&2; fail "parallel-sweep.sh"; }
  same_rows "$work/single.csv" "$work/parallel/merged.csv" || fail "GNU parallel shards differ from one sweep"
  # Merging a shard twice is refused, naming the files.
  if scripts/merge-shards.sh "$work/twice.csv" "$work"/parallel/shards-merged/shard-1-of-3.csv \
       "$work"/parallel/shards-merged/shard-1-of-3.csv 2>"$work/twice.log"; then fail "a shard merged twice"; fi
  grep -q "appears in" "$work/twice.log" || fail "merge of a repeated shard: $(cat "$work/twice.log")"
  # Shards from another build (another commit on some node) or with another header are refused too.
  local shard=$work/parallel/shards-merged/shard-2-of-3.csv
  python3 - "$shard" "$work/other-build.csv" "$work/other-header.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
commit = rows[0].index("git_commit")
with open(sys.argv[2], "w", newline="") as f:
    csv.writer(f, lineterminator="\n").writerows([rows[0]] + [r[:commit] + ["0000000"] + r[commit + 1:] for r in rows[1:]])
with open(sys.argv[3], "w", newline="") as f:
    csv.writer(f, lineterminator="\n").writerows([rows[0][:-1]] + [r[:-1] for r in rows[1:]])
PY
  for bad in other-build:"different builds" other-header:"different header"; do
    if scripts/merge-shards.sh "$work/bad.csv" "$work"/parallel/shards-merged/shard-1-of-3.csv "$work/${bad%%:*}.csv" \
         2>"$work/bad.log"; then fail "merged a shard from ${bad%%:*}"; fi
    grep -q "${bad#*:}" "$work/bad.log" || fail "${bad%%:*}: $(cat "$work/bad.log")"
  done
  say "GNU parallel: 3 shards merged into the rows of one sweep ($((SECONDS - start)) s)"
}

# Slurm ----------------------------------------------------------------------------------------------------------

start_slurm() {
  install_missing slurm-wlm munge
  local s=$work/slurm host
  host=$(hostname -s)
  mkdir -p "$s/munge" "$s/state" "$s/spool" "$s/log"
  chmod 700 "$s/munge"
  dd if=/dev/urandom of="$s/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$s/munge/munge.key"
  munged --force --foreground --key-file="$s/munge/munge.key" --socket="$s/munge/munge.socket" \
    --pid-file="$s/munge/munged.pid" --log-file="$s/log/munged.log" --seed-file="$s/munge/seed" \
    >"$s/log/munged.out" 2>&1 &
  pids+=($!)
  # Ports away from the defaults, so a real Slurm on this machine is not disturbed.
  cat > "$s/slurm.conf" <<CONF
ClusterName=convlab-check
SlurmctldHost=$host
SlurmctldPort=26817
SlurmdPort=26818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$s/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldLogFile=$s/log/slurmctld.log
SlurmdLogFile=$s/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdTimeout=30
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$s/slurm.conf
  for _ in $(seq 50); do [ -S "$s/munge/munge.socket" ] && break; sleep 0.1; done
  slurmctld -D -i -f "$SLURM_CONF" >"$s/log/slurmctld.out" 2>&1 &
  pids+=($!)
  slurmd -D -f "$SLURM_CONF" >"$s/log/slurmd.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && return
    sleep 0.2
  done
  tail -5 "$s/log/slurmctld.log" "$s/log/slurmd.log" >&2 || true
  fail "the single-node Slurm did not come up"
}

# wait_jobs ID...: until none of the jobs is pending or running (bounded).
wait_jobs() {
  local ids
  ids=$(IFS=,; echo "$*")
  for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$ids" 2>/dev/null)" ] && return
    sleep 0.2
  done
  squeue >&2 || true
  fail "jobs $ids still queued after 120 s"
}

check_slurm() {
  start_slurm
  local start=$SECONDS out=$work/slurm/merged.csv ids array merge
  cd "$work/slurm"
  # Exactly as README documents it, from the submit directory (logs land there; shard CSVs in shards-merged/).
  ids=$(CONVLAB=$convlab "$OLDPWD/scripts/slurm-sweep.sh" 4 "$out" "${grid[@]}")
  array=$(echo "$ids" | awk '{print $2}'); merge=$(echo "$ids" | awk '{print $4}')
  wait_jobs "$array" "$merge"
  cd "$OLDPWD"
  [ -f "$out" ] || { cat "$work"/slurm/slurm-convlab-*.out >&2 || true; fail "the merge job wrote no $out"; }
  same_rows "$work/single.csv" "$out" || fail "Slurm shards differ from one sweep"
  say "Slurm: a 4-task array and its afterok merge gave the rows of one sweep ($((SECONDS - start)) s)"

  # Resume: cancel task 2 of a fresh array while it runs, resubmit that index alone, merge: still complete.
  start=$SECONDS
  local dir=$work/slurm/shards-resume slow=(--kernels 1,3 --channels 4,8 --sizes 8,12 --batch 1
    --backends im2col,direct,winograd-f2x3 --max-time 0.3 --repeat 1 --no-check --threads 1)
  cd "$work/slurm"
  array=$(SWEEP_SHARDS=2 SWEEP_DIR=$dir SWEEP_GRID="${slow[*]}" CONVLAB=$convlab \
    sbatch --parsable --export=ALL --array=1-2 "$OLDPWD/scripts/slurm-sweep.sbatch")
  array=${array%%;*}
  # Cancel task 2 once its shard has at least one complete shape written but not all of them.
  for _ in $(seq 300); do
    [ -f "$dir/shard-2-of-2.csv" ] && [ "$(wc -l < "$dir/shard-2-of-2.csv")" -ge 3 ] && break
    sleep 0.1
  done
  scancel "${array}_2"
  wait_jobs "$array"
  local partial
  partial=$(($(wc -l < "$dir/shard-2-of-2.csv") - 1))
  array=$(SWEEP_SHARDS=2 SWEEP_DIR=$dir SWEEP_GRID="${slow[*]}" CONVLAB=$convlab \
    sbatch --parsable --export=ALL --array=2 "$OLDPWD/scripts/slurm-sweep.sbatch")
  wait_jobs "${array%%;*}"
  cd "$OLDPWD"
  scripts/merge-shards.sh "$work/slurm/resumed.csv" "$dir"/shard-*-of-2.csv 2>/dev/null
  "$convlab" sweep "${slow[@]}" --output "$work/single-slow.csv" 2>/dev/null
  same_rows "$work/single-slow.csv" "$work/slurm/resumed.csv" || fail "cancelled and resumed shard lost or repeated rows"
  say "Slurm: task 2 cancelled with $partial rows written, resubmitted alone, merged complete ($((SECONDS - start)) s)"

  # Errors a cluster user meets, each one clear line.
  cd "$work/slurm"
  array=$(SWEEP_SHARDS=2 CONVLAB=/nonexistent/convlab sbatch --parsable --export=ALL --array=1 \
    "$OLDPWD/scripts/slurm-sweep.sbatch")
  wait_jobs "${array%%;*}"
  grep -q "no convlab binary at /nonexistent/convlab" slurm-convlab-sweep-"${array%%;*}"_1.out \
    || fail "a missing binary was not reported"
  array=$(SWEEP_SHARDS=2 CONVLAB=$convlab sbatch --parsable --export=ALL --array=3 "$OLDPWD/scripts/slurm-sweep.sbatch")
  wait_jobs "${array%%;*}"
  grep -q "array index 3 is outside 1-2" slurm-convlab-sweep-"${array%%;*}"_3.out \
    || fail "an index outside the shards was not reported"
  cd "$OLDPWD"
  say "Slurm: a missing binary and an index outside the shards each fail the task with one clear line"
}

case $which in
  parallel) check_parallel ;;
  slurm) check_slurm ;;
  all) check_parallel; check_slurm ;;
  *) echo "usage: $0 [parallel|slurm|all]" >&2; exit 2 ;;
esac
say "clean"
