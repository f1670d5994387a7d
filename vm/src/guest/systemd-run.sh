#!/bin/sh
# Stage 2 of a `vm-harness systemd` guest, run by vm-harness.service once systemd has booted the
# userland root: install the package, load the image archive, run the one command, leave its output
# and exit status in the harness share (/vm-harness) and power off. Rendered by the host: @NAME@
# are shell-quoted. systemd has mounted /proc, /sys, cgroup2, bpffs and /run; stage 1 the rest.
# Setup failures are printed as "vm-harness: setup failed: ..." on the console, as in run.sh.

H=/vm-harness
off() {
    sync
    systemctl poweroff --force --force || echo o >/proc/sysrq-trigger
}
fail() {
    echo "vm-harness: setup failed: $*" >/dev/console
    off
    exit 1
}
say() {
    echo "$* at $(cut -d" " -f1 /proc/uptime)s" >/dev/console
}

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
# podman's defaults (systemd cgroup manager, journald events and logs) but no network.
export CONTAINERS_CONF="$H/containers.conf"
say "VM-HARNESS-BOOTED $(uname -r), PID 1 $(cat /proc/1/comm), $(stat -fc %T /sys/fs/cgroup)"

deb=@DEB@
if [ -n "$deb" ]; then
    # As a user would: apt resolves Depends from what is installed (the guest has no network, so
    # a missing one fails here). Not --no-download: apt then refuses the local file.
    apt-get install -y -q "$deb" >"$H/deb-install.log" 2>&1 \
        || fail "apt-get install $deb (deb-install.log in the share)"
fi

image=@IMAGE_ARCHIVE@
if [ -n "$image" ]; then
    podman load -q -i "$image" || fail "podman load -i $image"
fi
say "VM-HARNESS-READY"

cd @WORKDIR@ || fail "cd to the working directory"
env -i @ENV@ @COMMAND@ >"$H/output.log" 2>&1 </dev/null
echo $? >"$H/status"
say "VM-HARNESS-DONE"
off
