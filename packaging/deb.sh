#!/usr/bin/env bash
# Builds the Debian package of the hook from a release build, with dpkg-deb
# from a staged tree (nothing beyond dpkg-dev is needed on Debian).
#
# Usage: packaging/deb.sh BINARY OUTDIR
#   BINARY  the release build (target/release/oci-seccomp-bpf-hook)
#   OUTDIR  where oci-seccomp-bpf-hook_<version>_<arch>.deb goes
# Prints the package's path on the last line.
#
# The version is the binary's own (`--version`, from Cargo.toml). Depends is
# computed by dpkg-shlibdeps from the binary's shared libraries: libseccomp
# stays dynamic so that syscall names resolve exactly as the system's runc
# and crun resolve them (see README, Install).
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: packaging/deb.sh BINARY OUTDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=$(realpath "$1")
outdir=$(realpath -m "$2")
name=oci-seccomp-bpf-hook

for tool in dpkg-deb dpkg-shlibdeps strip cargo; do
	command -v "$tool" >/dev/null || {
		echo "deb.sh: $tool is missing (apt-get install dpkg-dev binutils; cargo from rustup)" >&2
		exit 1
	}
done

version=$("$bin" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
deb=$outdir/${name}_${version}_${arch}.deb
# Reproducible: file times clamped to the last commit's (dpkg-deb and the
# man page's gzip -n honour it).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}

umask 022
work=$(mktemp -d "${TMPDIR:-/tmp}/$name-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps expects the tree where debhelper puts it.
stage=$work/debian/$name

# The files, where podman and man look for them.
install -D -m 755 "$bin" "$stage/usr/libexec/oci/hooks.d/$name"
# As dh_strip does: no symbols, no build notes; the BPF object is data.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/libexec/oci/hooks.d/$name"
install -D -m 644 "$repo/hooks.d/$name.json" "$stage/usr/share/containers/oci/hooks.d/$name.json"
# DEBIAN/ first: dpkg-shlibdeps finds the package's root by it.
mkdir -p "$stage/DEBIAN" "$stage/usr/share/man/man1" "$stage/usr/share/doc/$name"
"$bin" man | gzip -9n >"$stage/usr/share/man/man1/$name.1.gz"

# DEP-5 copyright, with the statically linked crates as cargo resolves them
# for this platform (proc-macros run at build time only: left out).
crates=$(cd "$repo" && cargo tree --locked --offline -e normal --prefix none -p "$name" --format '{p} {l}' |
	grep -v -e '(proc-macro)' -e "^$name " | sed -e 's/ (\*)$//' | sort -u | sed -e 's/^/  /')
awk -v crates="$crates" '$0 == "@CRATES@" { print crates; next } { print }' "$here/copyright.in" \
	>"$stage/usr/share/doc/$name/copyright"
chmod 644 "$stage/usr/share/doc/$name/copyright"

# Depends from the binary's shared libraries (libc, libelf, zlib,
# libseccomp). dpkg-shlibdeps reads debian/control from its working
# directory: give it a minimal one.
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" >"$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O "debian/$name/usr/libexec/oci/hooks.d/$name" | sed -n 's/^shlibs:Depends=//p')
[[ -n $depends ]] || {
	echo "deb.sh: dpkg-shlibdeps found no shared libraries in $bin" >&2
	exit 1
}

install -m 755 "$here/postrm" "$stage/DEBIAN/postrm"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
size=$(du -s -k --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-oci-seccomp-bpf-hook maintainers <root@localhost>}
Installed-Size: $size
Depends: $depends
Recommends: podman
Enhances: podman
Section: admin
Priority: optional
Description: OCI hook that records a container's syscalls into a seccomp profile
 A podman OCI prestart hook: a container started with the annotation
 io.containers.trace-syscall="of:/abs/out.json" has every syscall it makes
 recorded with eBPF, and when it exits the hook writes a seccomp profile
 that allows exactly those (podman run --security-opt seccomp=out.json).
 .
 A drop-in replacement for the Go/bcc tool of the same name: the BPF
 program is CO-RE and built into the binary, so no kernel headers and no
 compiler are needed at run time. Needs a kernel with BTF
 (/sys/kernel/btf/vmlinux) and root (rootless containers are refused).
CONTROL

mkdir -p "$outdir"
dpkg-deb --root-owner-group --build "$stage" "$deb.tmp" >/dev/null
mv -f "$deb.tmp" "$deb"
echo "$deb"
