#!/bin/busybox sh
# Stage 2, PID 1 after switch_root into the overlay of the host root: mount what the tests and
# podman expect, load the image archive, run the one command, leave its output and exit status
# in the harness share (/vm-harness) and power off. Rendered by the host: @NAME@ are shell-quoted.
# Run by busybox sh, calling busybox's static applets (mount, mkdir, ...): they start in a fraction
# of the time the host's dynamically linked tools take under emulation (0.3 s per mount otherwise).
# Setup failures are printed as "vm-harness: setup failed: ..." on the console, where the host
# looks for them; no status file then means an infrastructure failure, never a test result.

H=/vm-harness
fail() {
    echo "vm-harness: setup failed: $*"
    off
}
off() {
    sync
    /bin/busybox poweroff -f
    echo o >/proc/sysrq-trigger
}
# mnt TYPE DIR [OPTIONS]
mnt() {
    # By path: the shell's own applet lookup needs /proc, which is not mounted yet.
    /bin/busybox mkdir -p "$2" || fail "mkdir $2"
    /bin/busybox mount -t "$1" -o "${3:-defaults}" "$1" "$2" || fail "mount $1 on $2"
}

mnt proc /proc
mnt sysfs /sys
mnt devtmpfs /dev
mnt devpts /dev/pts mode=0620,ptmxmode=0666
mnt tmpfs /dev/shm mode=1777
# cgroup v2 alone: what podman and crun expect, unlike the host's hybrid layout.
mnt cgroup2 /sys/fs/cgroup
mnt tracefs /sys/kernel/tracing
mnt debugfs /sys/kernel/debug
mnt bpf /sys/fs/bpf
# podman's overlay storage cannot sit on overlayfs, and every boot should start empty.
mnt tmpfs /run mode=0755
mnt tmpfs /var/lib/containers mode=0700
mnt tmpfs /var/tmp mode=1777

/bin/busybox hostname vm-harness
/bin/busybox ip link set lo up
# Real root here: before 5.11 BPF maps are charged to RLIMIT_MEMLOCK.
ulimit -l unlimited

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
# No systemd and no journald in the guest.
export CONTAINERS_CONF="$H/containers.conf"
echo "VM-HARNESS-BOOTED $(uname -r) at $(cut -d" " -f1 /proc/uptime)s"

image=@IMAGE_ARCHIVE@
if [ -n "$image" ]; then
    podman load -q -i "$image" || fail "podman load -i $image"
fi
echo "VM-HARNESS-READY at $(cut -d" " -f1 /proc/uptime)s"

cd @WORKDIR@ || fail "cd to the working directory"
# /usr/bin/env by path: busybox sh would otherwise run its own applets for the command's words.
/usr/bin/env -i @ENV@ @COMMAND@ >"$H/output.log" 2>&1 </dev/null
echo $? >"$H/status"
echo "VM-HARNESS-DONE at $(cut -d" " -f1 /proc/uptime)s"
off
