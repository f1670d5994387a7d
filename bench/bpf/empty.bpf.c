// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reference programs for the per-syscall benchmarks, on the recorder's hook
 * (the sys_enter raw tracepoint). Written here from a description of the
 * work, not copied from the recorder, so that the bench can tell what the
 * design costs on this kernel from what the hook adds to it:
 *
 * - empty_*: does nothing. What a syscall costs with it attached, minus
 *   what it costs with nothing attached, is the price of the tracepoint and
 *   the BPF call alone: the floor no recorder can go below.
 * - lookup_*: the least a recorder keyed by mount namespace in a hash map
 *   does (the recorder's first design): read the task's mount namespace,
 *   look it up in a hash map, and on a hit mark the
 *   syscall in the value (read before write). With the map empty every task
 *   misses, as untraced ones do; with the bench's own namespace in it, every
 *   host task hits, as a traced container's do.
 *
 * Each comes in the two flavours of the same hook the recorder has used;
 * the bench loads only the program it attaches (see src/bpf.rs).
 */
#include "../../bpf/vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define SLOTS 512

/* uapi/linux/bpf.h; the recorder's minimal header no longer needs them. */
#define BPF_MAP_TYPE_HASH 1
#define BPF_F_NO_PREALLOC 1

struct seen {
	__u8 nr[SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct seen);
} watched SEC(".maps");

static __always_inline int lookup(long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 mntns = task->nsproxy->mnt_ns->ns.inum;
	struct seen *seen = bpf_map_lookup_elem(&watched, &mntns);
	__u32 nr = id & (SLOTS - 1);

	if (seen && !seen->nr[nr])
		seen->nr[nr] = 1;
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(empty_tp_btf, struct pt_regs *regs, long id)
{
	return 0;
}

SEC("raw_tp/sys_enter")
int empty_raw_tp(void *ctx)
{
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(lookup_tp_btf, struct pt_regs *regs, long id)
{
	return lookup(id);
}

/* raw_tp context: the tracepoint's arguments as u64s (regs, id). */
SEC("raw_tp/sys_enter")
int lookup_raw_tp(__u64 *ctx)
{
	return lookup(ctx[1]);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
