#!/bin/busybox sh
# Stage 1, /init of the initramfs: load the kernel's own 9p/virtio/overlay modules, put a tmpfs
# overlay on top of the host root (shared read-only over 9p) and switch_root into it.
# Every failure says what failed on the console and powers off, so the host sees it at once
# instead of waiting for its timeout.

/bin/busybox --install -s /bin
export PATH=/bin

fail() {
    echo "vm-harness: stage 1: $*"
    # -f: there is no init system to ask; QEMU runs with -no-reboot and exits.
    poweroff -f
}

mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# The accelerator probe only needs to know that the kernel reached userspace.
if grep -q 'vmharness.probe' /proc/cmdline; then
    echo "VM-HARNESS-PROBE-OK"
    poweroff -f
fi

# Named NN-name.ko by the host, so the glob order is the dependency order.
for module in /modules/*.ko; do
    [ -e "$module" ] || continue
    insmod "$module" || fail "insmod $module"
done

# The virtio device can appear a moment after its driver loads: retry briefly.
mount_9p() {
    tries=50
    until mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,$2" "$1" "$3" 2>/dev/null; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "mount 9p share $1 on $3"
        sleep 0.1
    done
}

# cache=loose: the shared root (the host's, or a userland's) does not change under a test run,
# and this is much faster.
mount_9p rootfs ro,cache=loose /lower
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount tmpfs for the overlay"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "mount overlay on the shared root"

# The harness share carries the stage 2 script in and the results out; no cache, so what the
# guest writes reaches the host as it is written.
mkdir -p /newroot/vm-harness
mount_9p harness cache=none /newroot/vm-harness

if ! grep -q 'vmharness.systemd' /proc/cmdline; then
    umount /proc /sys /dev
    exec switch_root /newroot /bin/busybox sh /vm-harness/run.sh
    fail "switch_root"
fi

# A userland root booted by systemd: the repository (test binary, hook, fixtures) comes in as a
# share of its own at its host path, read-only with a tmpfs overlay as the root is; container
# storage and /var/tmp get tmpfs (overlay cannot stack on overlayfs); /tmp is not systemd's tmpfs
# (tmp.mount would hide a repository under /tmp, as CI's fresh clone is); the one unit that runs
# stage 2 is enabled.
repo=$(cat /newroot/vm-harness/repo-path) || fail "read repo-path from the harness share"
mkdir -p /repo /rw/repo-upper /rw/repo-work "/newroot$repo"
mount_9p repo ro,cache=loose /repo
mount -t overlay -o lowerdir=/repo,upperdir=/rw/repo-upper,workdir=/rw/repo-work overlay "/newroot$repo" \
    || fail "mount overlay on the repository"
mkdir -p /newroot/var/lib/containers /newroot/var/tmp
mount -t tmpfs -o mode=0700 tmpfs /newroot/var/lib/containers || fail "mount tmpfs on /var/lib/containers"
mount -t tmpfs -o mode=1777 tmpfs /newroot/var/tmp || fail "mount tmpfs on /var/tmp"
units=/newroot/etc/systemd/system
mkdir -p "$units/multi-user.target.wants"
ln -sf /dev/null "$units/tmp.mount"
cp /newroot/vm-harness/vm-harness.service "$units/" || fail "install vm-harness.service"
ln -sf ../vm-harness.service "$units/multi-user.target.wants/vm-harness.service"
echo vm-harness >/newroot/etc/hostname

umount /proc /sys /dev
exec switch_root /newroot /lib/systemd/systemd
fail "switch_root to systemd"
