#!/usr/bin/env bash
# Installs what this project needs on a fresh Debian 12 machine (as root),
# then runs `just RECIPE...`. Safe to run again: it installs only what is
# missing. Usage: bash scripts/bootstrap.sh demo | test | vm-test | bench ...
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: clang for the BPF program, libelf/zlib for libbpf, libseccomp for
# syscall names. Run: podman with both runtimes. Tests: busybox-static and
# gcc-multilib for the fixture images, qemu and cpio for the VM matrix,
# strace and hyperfine for the benchmarks, clang-format for `just lint`,
# bpftool for the shared-program tests, jq for the Justfile, mmdebstrap for
# the userland roots of `just test-userlands`, debian-archive-keyring to
# check the Debian archive where the host is not Debian (GitHub runners),
# dpkg-dev for `just deb` (dpkg-shlibdeps computes the package's Depends).
packages=(clang libelf-dev zlib1g-dev pkg-config libseccomp-dev podman runc crun
  busybox-static gcc-multilib qemu-system-x86 cpio xz-utils zstd strace hyperfine clang-format jq bpftool mmdebstrap debian-archive-keyring dpkg-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v just >/dev/null; then
  echo "bootstrap: installing just (not in Debian 12)"
  cargo install --locked just >/dev/null 2>&1 || cargo install just
fi
export PATH="$HOME/.cargo/bin:$PATH"
exec just "$@"
