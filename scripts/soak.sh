#!/usr/bin/env bash
# Load and soak (issue 9): PARALLEL traced containers started at once, then
# SEQUENCE traced containers one after another. Prints the figures and exits
# non-zero when one is off. Root, podman, the fixture image.
# Usage: soak.sh HOOK_BINARY [PARALLEL] [SEQUENCE]
set -euo pipefail
hook=$(realpath "$1")
parallel=${2:-64}
sequence=${3:-1000}
repo=$(realpath "$(dirname "$0")/..")
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/tests/fixtures/containers.conf}
image=localhost/seccomp-fixture:latest
work=$(mktemp -d /tmp/seccomp-soak.XXXXXX)
mkdir -p "$work/hooks.d" "$work/out"
jq --arg path "$hook" --arg log "OCI_SECCOMP_BPF_HOOK_LOG_FILE=$work/hook.log" \
  '.hook.path = $path | .hook.env = [$log]' "$repo/hooks.d/oci-seccomp-bpf-hook.json" \
  > "$work/hooks.d/oci-seccomp-bpf-hook.json"
podman() { command podman --hooks-dir "$work/hooks.d" "$@"; }
fail() { echo "soak: FAIL: $*" >&2; exit 1; }

# Tracers are our binary's processes; pins live under bpffs.
tracers() { for p in /proc/[0-9]*; do [[ $(readlink "$p/exe" 2>/dev/null) == "$hook" ]] && echo "${p#/proc/}"; done; true; }
pins() { find /sys/fs/bpf -maxdepth 2 -name 'oci-seccomp-bpf-hook-*' 2>/dev/null | wc -l; }
maps() { bpftool map list | grep -c '^[0-9]*:' || true; }
bpffs_entries() { find /sys/fs/bpf 2>/dev/null | wc -l; }
open_files() { awk '{print $1}' /proc/sys/fs/file-nr; }
wait_for() { for _ in $(seq 600); do [[ -e $1 ]] && return 0; sleep 0.1; done; return 1; }
# Peak RSS (KiB) the tracers logged, averaged over log lines FROM..TO.
rss() { grep -o 'tracer peak RSS [0-9]*' "$work/hook.log" | awk '{print $4}' | sed -n "$1,$2p" \
  | awk '{s+=$1; n++} END {if (n) printf "%d", s/n; else print 0}'; }

# Each container's profile must be its own: even ones run `sysprobe
# unusual` (personality), odd ones `sysprobe once` (sched_get_priority_min).
check_profile() {
  local i=$1 file=$work/out/$1.json own other
  if (( i % 2 == 0 )); then own=personality other=sched_get_priority_min; else own=sched_get_priority_min other=personality; fi
  wait_for "$file" || fail "no profile $file"
  jq -e --arg n "$own" '[.syscalls[].names[]?] | index($n)' "$file" >/dev/null || fail "$file lacks $own"
  jq -e --arg n "$other" '[.syscalls[].names[]?] | index($n) | not' "$file" >/dev/null || fail "$file has $other: another container's"
}
run_one() {
  local i=$1 cmd=once
  (( i % 2 == 0 )) && cmd=unusual
  podman run --rm --network none --annotation "io.containers.trace-syscall=of:$work/out/$i.json" \
    "$image" /bin/sh -c "sleep ${2:-0}; /usr/local/bin/sysprobe $cmd" >/dev/null
}

[[ -z $(tracers) ]] || fail "tracers of $hook already run"
# Other builds' hooks (other checkouts, other test runs) may pin too: judge
# the change, not the absolute count.
pins_at_start=$(pins)
echo "soak: $parallel at once, $sequence in sequence, files in $work"

start=$(date +%s)
for i in $(seq 1 "$parallel"); do run_one "$i" 3 & done
wait
for i in $(seq 1 "$parallel"); do check_profile "$i"; done
sleep 1
[[ -z $(tracers) ]] || fail "tracers left after $parallel at once: $(tracers)"
(( $(pins) <= pins_at_start )) || fail "pins left after $parallel at once"
echo "parallel: $parallel containers in $(( $(date +%s) - start )) s, each profile its own, no tracer and no pin left"

rm -f "$work"/out/*.json
# A traced container kept running through the sequence keeps the shared
# program loaded, so anything a run leaves in its pin directory or in the
# kernel (record maps) accumulates and shows in the counts.
anchor=$(podman run -d --network none --annotation "io.containers.trace-syscall=of:$work/anchor.json" \
  "$image" /bin/sleep 100000)
sleep 1
before="pin_dirs=$(pins) maps=$(maps) bpffs_entries=$(bpffs_entries) open_files=$(open_files)"
lines_before=$(grep -c 'tracer peak RSS' "$work/hook.log" || true)
start=$(date +%s)
for i in $(seq 1 "$sequence"); do
  run_one "$i"
  check_profile "$i"
  rm -f "$work/out/$i.json"
done
sleep 1
after="pin_dirs=$(pins) maps=$(maps) bpffs_entries=$(bpffs_entries) open_files=$(open_files)"
podman rm -f -t 0 "$anchor" >/dev/null
wait_for "$work/anchor.json" || fail "no profile for the anchor container"
sleep 1
[[ -z $(tracers) ]] || fail "tracers left after the sequence: $(tracers)"
(( $(pins) <= pins_at_start )) || fail "pins left after the sequence"
first=$((lines_before + 1)); last=$((lines_before + sequence))
tail_from=$(( last - 9 > first ? last - 9 : first ))
echo "sequence: $sequence containers in $(( $(date +%s) - start )) s"
echo "  before: $before"
echo "  after:  $after"
echo "  (counts taken while one traced anchor container runs, so the shared program is loaded)"
echo "  tracer peak RSS: first 10 $(rss "$first" $((first + 9 < last ? first + 9 : last))) KiB, last 10 $(rss "$tail_from" "$last") KiB"
# Open files are host-wide and move with everything else running: shown, not judged.
[[ ${before%% open_files*} == "${after%% open_files*}" ]] || fail "pins, BPF maps or bpffs entries changed"
