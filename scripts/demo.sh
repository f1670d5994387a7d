#!/usr/bin/env bash
# The built-in demo: record a fixture container's syscalls with the hook,
# print the profile, replay the container under it, and show that a
# syscall outside the profile is denied. Usage: demo.sh HOOK_BINARY
set -euo pipefail
hook=$(realpath "$1")
repo=$(realpath "$(dirname "$0")/..")
# Podman settings that work on these machines (see tests/fixtures/containers.conf).
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/tests/fixtures/containers.conf}
image=localhost/seccomp-fixture:latest
demo=$(mktemp -d /tmp/seccomp-demo.XXXXXX)
mkdir -p "$demo/hooks.d"
sed "s|/usr/libexec/oci/hooks.d/oci-seccomp-bpf-hook|$hook|" \
  "$repo/hooks.d/oci-seccomp-bpf-hook.json" > "$demo/hooks.d/oci-seccomp-bpf-hook.json"
podman() { command podman --hooks-dir "$demo/hooks.d" "$@"; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. record: podman run --annotation io.containers.trace-syscall=of:$demo/profile.json $image sysprobe unusual"
podman run --rm --network none \
  --annotation "io.containers.trace-syscall=of:$demo/profile.json" \
  "$image" /usr/local/bin/sysprobe unusual
# The tracer writes the profile as the container's init exits.
for _ in $(seq 100); do [[ -e $demo/profile.json ]] && break; sleep 0.05; done

say "2. the profile ($demo/profile.json)"
cat "$demo/profile.json"

say "3. replay: podman run --security-opt seccomp=$demo/profile.json ... (same output)"
podman run --rm --network none --security-opt "seccomp=$demo/profile.json" \
  "$image" /usr/local/bin/sysprobe unusual

say "4. a profile recorded from /bin/true denies what sysprobe needs"
podman run --rm --network none \
  --annotation "io.containers.trace-syscall=of:$demo/true.json" "$image" /bin/true
for _ in $(seq 100); do [[ -e $demo/true.json ]] && break; sleep 0.05; done
if podman run --rm --network none --security-opt "seccomp=$demo/true.json" \
  "$image" /usr/local/bin/sysprobe unusual; then
  echo "unexpected: sysprobe ran under the /bin/true profile" >&2
  exit 1
fi
say "demo done: files in $demo"
