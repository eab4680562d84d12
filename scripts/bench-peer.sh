#!/usr/bin/env bash
# Side by side: vaultstorm's load generator and hashicorp/vault-benchmark,
# closed loop, reads only, against the same five-node cluster (the one
# `vaultstorm up` makes: TLS, raft on RAID0, transit auto-unseal), both on
# the active node, taking turns RUNS times each (vaultstorm twice: its
# default HTTP/1.1, and --http2; VARIANTS picks others). On a noisy 2-core machine
# only figures measured together mean anything, so both run here, now.
#
#   VAULT_BENCHMARK=/path/to/vault-benchmark make bench-peer
#
# Build vault-benchmark yourself, outside this repository (its code is
# never part of vaultstorm):
#   git clone https://github.com/hashicorp/vault-benchmark /tmp/vb
#   (cd /tmp/vb && go build -o /tmp/vault-benchmark .)
#
# Settings (environment): RUNS (3), DURATION (30s), WORKERS (32), KEYS
# (1000), VALUE_SIZE (256), SUBNET (97: the cluster's 127.0.SUBNET.x
# addresses), BIN (bin/vaultstorm), KEEP=1 keeps the work directory,
# VARIANTS ("http1 http2": vaultstorm's flags to try; also procs1 for
# --procs 1, the generator on one thread, and http2-procs1), RATE (0: closed
# loop, WORKERS each; N: both generators at N requests a second, to compare
# their cost at the same throughput), PERF=1 (run each generator under
# `perf stat` and also print, per request, its context switches and
# system calls: the profile of where a generator's time goes).
#
# Generator CPU is user+system time of the generator's process (rusage of
# the child), setup included: vault-benchmark writes its keys first, and
# vaultstorm prefills its own, the same number.
#
# vault-benchmark mounts a KV engine under a random path and removes it
# (cleanup): it is given the cluster's root token, which is fine only
# because this cluster is made for this run and removed at its end.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -n "${VAULT_BENCHMARK:-}" ] || { echo "set VAULT_BENCHMARK to a vault-benchmark binary (how to build one: the top of $0)" >&2; exit 2; }
[ -x "$VAULT_BENCHMARK" ] || { echo "VAULT_BENCHMARK=$VAULT_BENCHMARK is not an executable file" >&2; exit 2; }
RUNS=${RUNS:-3} DURATION=${DURATION:-30s} WORKERS=${WORKERS:-32} KEYS=${KEYS:-1000}
VALUE_SIZE=${VALUE_SIZE:-256} SUBNET=${SUBNET:-97} BIN=${BIN:-bin/vaultstorm}
VARIANTS=${VARIANTS:-http1 http2} RATE=${RATE:-0} PERF=${PERF:-0}
case $RATE in ''|*[!0-9]*) echo "RATE=$RATE: want a whole number of requests a second (0: closed loop)" >&2; exit 2 ;; esac
if [ "$PERF" = 1 ]; then
  command -v perf >/dev/null || { echo "PERF=1 needs perf (Debian: apt-get install linux-perf)" >&2; exit 2; }
  # Counted per process tree; syscall tracepoints need root (or a low perf_event_paranoid).
  PERF_EVENTS=task-clock,context-switches,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_nanosleep
  perf stat -x, -e "$PERF_EVENTS" -o /dev/null true 2>/dev/null \
    || { echo "perf cannot count $PERF_EVENTS here (try as root)" >&2; exit 2; }
fi
[ -x "$BIN" ] || { echo "$BIN not found: run make build vault first" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed to read both tools' JSON" >&2; exit 2; }

work=$(mktemp -d /tmp/vaultstorm-bench-peer.XXXXXX)
chmod 700 "$work"
dir=$work/cluster
cleanup() {
  "$BIN" down --dir "$dir" >/dev/null 2>&1 || echo "could not remove the cluster: $BIN down --dir $dir" >&2
  [ "${KEEP:-0}" = 1 ] && echo "work directory kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

echo "== cluster: $BIN up --dir $dir --subnet $SUBNET"
"$BIN" up --dir "$dir" --subnet "$SUBNET" >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
eval "$("$BIN" env --dir "$dir")" # VAULT_ADDR (the active node), VAULT_CACERT, VAULT_TOKEN
export VAULT_ADDR VAULT_CACERT VAULT_TOKEN

# rusage runs a command and prints "CPU_SECONDS WALL_SECONDS" of it; with
# PERF=1, under perf stat writing to $PERF_OUT.
rusage() {
  if [ "$PERF" = 1 ]; then set -- perf stat -x, -e "$PERF_EVENTS" -o "$PERF_OUT" -- "$@"; fi
  python3 - "$@" <<'EOF'
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
if rc != 0:
    sys.exit("%s exited %d" % (sys.argv[1], rc))
print("%.3f %.3f" % (r.ru_utime + r.ru_stime, time.monotonic() - t))
EOF
}

cat >"$work/vb.hcl" <<EOF
duration    = "$DURATION"
workers     = $WORKERS
rps         = $RATE
report_mode = "json"
cleanup     = true
test "kvv2_read" "read" {
  weight = 100
  config {
    numkvs = $KEYS
    kvsize = $VALUE_SIZE
  }
}
EOF

results=$work/results.tsv profile=$work/profile.tsv
: >"$results"
: >"$profile"
if [ "$RATE" -gt 0 ]; then pace=(--rate "$RATE"); else pace=(--closed "$WORKERS"); fi
# perfrow NAME REQUESTS appends NAME's counts per request to the profile.
perfrow() {
  [ "$PERF" = 1 ] || return 0
  python3 - "$PERF_OUT" "$1" "$2" >>"$profile" <<'EOF'
import sys
c = {}
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0][:1].isdigit():
        c[f[2].replace("syscalls:sys_enter_", "")] = float(f[0])
n = float(sys.argv[3])
print("\t".join([sys.argv[2]] + ["%.3f" % (c.get("task-clock", 0) / n)] +
                ["%.2f" % (c.get(k, 0) / n) for k in ("context-switches", "write", "read", "futex", "epoll_pwait", "nanosleep")]))
EOF
}
for i in $(seq "$RUNS"); do
  echo "== run $i of $RUNS: vault-benchmark"
  out=$work/vb-$i.json
  PERF_OUT=$work/vb-$i.perf
  cpu=$(rusage sh -c "exec \"\$0\" run -config=\"\$1\" -ca_pem_file=\"\$VAULT_CACERT\" >\"\$2\" 2>\"\$2.log\"" "$VAULT_BENCHMARK" "$work/vb.hcl" "$out") \
    || { echo "vault-benchmark failed; its log:" >&2; tail -20 "$out.log" >&2; exit 1; }
  python3 - "$out" "$cpu" >>"$results" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
rep = json.loads(text[text.index("{"):])
m = rep["metrics"].get("read") or rep["metrics"]["total"]
lat = m["latencies"]
cpu, wall = map(float, sys.argv[2].split())
n = m["requests"]
print("vault-benchmark\t%.0f\t%.2f\t%.2f\t%.3f\t%.1f\t%.1f" % (
    m["throughput"], lat["50th"] / 1e6, lat["99th"] / 1e6, cpu * 1000 / n, wall, m["success"] * 100))
EOF
  perfrow vault-benchmark "$(python3 -c 'import json,sys; t=open(sys.argv[1]).read(); m=json.loads(t[t.index("{"):])["metrics"]; print((m.get("read") or m["total"])["requests"])' "$out")"
  for proto in $VARIANTS; do
  echo "== run $i of $RUNS: vaultstorm ($proto)"
  out=$work/vs-$proto-$i
  PERF_OUT=$out.perf
  flags=()
  case $proto in
    http1) ;;
    http2) flags=(--http2) ;;
    procs1) flags=(--procs 1) ;;
    http2-procs1) flags=(--http2 --procs 1) ;;
    *) echo "VARIANTS: unknown variant $proto (want http1, http2, procs1, http2-procs1)" >&2; exit 2 ;;
  esac
  cpu=$(rusage "$BIN" load "${pace[@]}" --duration "$DURATION" --mix read=100 --keys "$KEYS" \
    --value-size "$VALUE_SIZE" --target active --out "$out" "${flags[@]}") \
    || { echo "vaultstorm load failed" >&2; exit 1; }
  python3 - "$out/summary.json" "$cpu" "$proto" >>"$results" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
r = s["ops"]["read"]
n = r["count"]
cpu, wall = map(float, sys.argv[2].split())
ok = 100.0 * (n - r.get("errors", 0)) / max(n, 1)
name = {"http1": "vaultstorm", "http2": "vaultstorm --http2", "procs1": "vaultstorm --procs 1",
        "http2-procs1": "vaultstorm --http2 --procs 1"}[sys.argv[3]]
print("%s\t%.0f\t%.2f\t%.2f\t%.3f\t%.1f\t%.1f" % (
    name, n / s["duration_s"], r["p50_ms"], r["p99_ms"], cpu * 1000 / n, wall, ok))
EOF
  perfrow "$(tail -1 "$results" | cut -f1)" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops"]["read"]["count"])' "$out/summary.json")"
  done
done

echo
python3 - "$results" "$WORKERS" "$DURATION" "$KEYS" "$RATE" "$profile" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
pace = "closed loop, %s workers" % sys.argv[2] if sys.argv[5] == "0" else "%s requests a second" % sys.argv[5]
print("%s, %s, %s keys, reads, active node; each row one run, then the median" % (pace, sys.argv[3], sys.argv[4]))
print("%-28s %10s %8s %8s %14s %8s %8s" % ("generator", "req/s", "p50 ms", "p99 ms", "CPU ms/request", "wall s", "ok %"))
med = {}
for r in rows:
    print("%-28s %10s %8s %8s %14s %8s %8s" % tuple(r))
    med.setdefault(r[0], []).append([float(x) for x in r[1:]])
print()
for name, v in med.items():
    cols = [statistics.median(c) for c in zip(*v)]
    print("%-28s %10.0f %8.2f %8.2f %14.3f %8.1f %8.1f  (median)" % (name, *cols))
print()
vb = med["vault-benchmark"]
for name in (n for n in med if n != "vault-benchmark"):
    vs = med[name]
    thr = statistics.median(r[0] for r in vs) / statistics.median(r[0] for r in vb)
    cpu = statistics.median(r[3] for r in vs) / statistics.median(r[3] for r in vb)
    p99 = statistics.median(r[2] for r in vs) / statistics.median(r[2] for r in vb)
    print("%s / vault-benchmark: throughput %.2fx (goal >= 1.2), CPU per request %.2fx (goal <= 0.8), p99 %.2fx (goal <= 1)" % (name, thr, cpu, p99))
prof = [l.rstrip("\n").split("\t") for l in open(sys.argv[6])]
if prof:
    print()
    print("per request, perf stat of the generator's process (setup included); the median of the runs")
    cols = ("CPU ms", "ctx sw", "write", "read", "futex", "epoll", "nanosleep")
    print("%-28s" % "generator" + "".join("%10s" % c for c in cols))
    by = {}
    for r in prof:
        by.setdefault(r[0], []).append([float(x) for x in r[1:]])
    for name, v in by.items():
        med = [statistics.median(c) for c in zip(*v)]
        print("%-28s" % name + "%10.3f" % med[0] + "".join("%10.2f" % x for x in med[1:]))
EOF
