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

# cache=loose: the host root does not change under a test run, and this is much faster.
mount_9p rootfs ro,cache=loose /lower
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount tmpfs for the overlay"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "mount overlay on the host root"

# The harness share carries the stage 2 script in and the results out; no cache, so what the
# guest writes reaches the host as it is written.
mkdir -p /newroot/vm-harness
mount_9p harness cache=none /newroot/vm-harness

umount /proc /sys /dev
exec switch_root /newroot /bin/busybox sh /vm-harness/run.sh
fail "switch_root"
