// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Records which syscalls the traced containers make.
 *
 * One program on the syscall-entry tracepoint, shared by every tracer: the
 * first tracer loads it and pins its link and slot table in bpffs, each
 * tracer puts its container's record map in the table, the last one out
 * unpins them (src/tracer.rs).
 * Each attached program would add the tracepoint's full cost to every
 * syscall on the host, so one program for all keeps that cost flat however
 * many containers are traced. Every task on the host runs it, so the
 * untraced path is kept to a namespace read and a few loads from the slot
 * table, with no kernel call beyond finding the current task; everything
 * else (naming, merging, writing) happens in user space at exit.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "recorder.h"

/* arch/x86/include/asm/thread_info.h: "32bit syscall active"; unchanged since 2.6. */
#define TS_COMPAT 0x0002
/* include/uapi/asm-generic/errno-base.h */
#define EEXIST_ERRNO 17
/* arch/x86/include/uapi/asm/unistd.h */
#define X32_SYSCALL_BIT 0x40000000

/*
 * Which task belongs to which container, decided in this one place: the key
 * is the inode number of the task's mount namespace.
 * - The PID namespace would miss --pid=host containers.
 * - The cgroup v2 id is not per container on cgroup v1 or hybrid hosts
 *   (runc with cgroupfs there leaves tasks in the root v2 cgroup).
 * - Every OCI container gets its own mount namespace, `podman exec` joins it
 *   with setns(), and it is set before the prestart hook runs.
 * The cost: a process inside the container that unshares its own mount
 * namespace (a nested container) is no longer recorded.
 */
/* A container's record lives in a map of its own, created by its tracer:
 * an idle recorder holds no records, and a tracer reads its container's
 * record without going through anyone else's. */
struct record_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	/* Sizes, not __type(): clang would emit the record's type here as a
	 * forward declaration, and the kernel takes BTF for both or neither. */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct container_record));
};

/*
 * The slot table (recorder.h): CONTAINER_SLOTS pointers to record maps, most
 * of them empty. Not a hash map: the verifier turns lookups in an array of
 * arrays into a few loads, while a hash lookup is a kernel call (a call and
 * a return, which mitigations against speculative execution make cost as
 * much as the rest of the program), paid by every syscall on the host.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, CONTAINER_SLOTS);
	__type(key, __u32);
	__array(values, struct record_map);
} containers SEC(".maps");

/*
 * Argument values (src/arg_rules.rs): one map for every traced container,
 * keyed by namespace, watch and value. A hash map because a value must be
 * added once and atomically (BPF_NOEXIST) by whichever CPU sees it first:
 * the record's plain stores would let two new values race for one place,
 * and the atomics that could claim a place are missing on 5.10. Only the
 * watched syscalls of traced containers reach it. Allocated as values
 * arrive: an idle recorder holds nothing.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ARG_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct arg_key);
	__type(value, __u8);
} arg_values SEC(".maps");

/* The record of mount namespace mntns, or NULL when it is not traced: the
 * untraced path (every other task on the host) finds its slots empty. */
static __always_inline struct container_record *find_record(__u32 mntns)
{
	__u32 zero = 0;

#pragma unroll
	for (__u32 i = 0; i < CONTAINER_PROBES; i++) {
		__u32 slot = (mntns + i) & (CONTAINER_SLOTS - 1);
		struct container_record *record;
		void *records;

		records = bpf_map_lookup_elem(&containers, &slot);
		if (!records)
			continue;
		record = bpf_map_lookup_elem(records, &zero);
		if (record && record->mntns == mntns)
			return record;
	}
	return NULL;
}

/*
 * Which of a container's syscalls belong in its profile, decided in this one
 * place: those its seccomp filter sees, and nothing the runtime does before.
 *
 * - The kernel runs a task's seccomp filters (syscall_trace_enter) before the
 *   sys_enter tracepoint, so a syscall that reaches us from a task in
 *   SECCOMP_MODE_FILTER has passed the filter a replay will install. runc and
 *   crun attach the container's filter shortly before they execve the
 *   entrypoint (and the same in `podman exec`); fork and execve keep it. What
 *   the runtime does before that (mount, pivot_root, sethostname, setns,
 *   keyctl, its own seccomp()) never meets the filter, so it is not recorded;
 *   what it does after (capset, setuid, the exec fifo, a Go runtime's futex)
 *   meets it, so it is.
 * - A container without a filter (seccomp=unconfined, --privileged) has no
 *   such moment: there a syscall counts once the task runs a program loaded
 *   from a mount of its own mount namespace, i.e. the entrypoint or anything
 *   started inside the container. The runtime's own binary was opened on the
 *   host (or is a memfd), so its mount belongs to another namespace even
 *   after the runtime entered the container's. Once that workload has run,
 *   the runtime's calls set up a session in the running container (podman
 *   exec): filed apart, since a replay's filter meets a different part of
 *   them (src/handoff.rs).
 * The second test costs a probe read, so it only runs for tasks without a
 * filter; confined containers pay one load.
 */
#define SECCOMP_MODE_FILTER 2

/* has_btf_task: the task is a BTF pointer (5.11+), read with plain loads. */
static __always_inline bool runs_own_program(struct task_struct *task, struct mnt_namespace *ns,
					     bool has_btf_task)
{
	struct vfsmount *vfs;
	struct mount *mount;

	if (has_btf_task)
		vfs = task->mm->exe_file->f_path.mnt; /* a NULL mm reads as 0 */
	else
		vfs = BPF_CORE_READ(task, mm, exe_file, f_path.mnt);
	if (!vfs)
		return false; /* kernel threads have no mm */
	/* container_of(): the verifier allows no arithmetic on a BTF pointer,
	 * so the enclosing struct mount is read through a probe read. */
	mount = (void *)vfs - bpf_core_field_offset(struct mount, mnt);
	return BPF_CORE_READ(mount, mnt_ns) == ns;
}

/*
 * The never-reused id of mount namespace `ns` (ns_common.ns_id from 6.18,
 * mnt_namespace.seq before). Inode numbers are handed out again as soon as
 * a namespace is freed: a container that exits while its tracer is still
 * registered can pass its inode to the next container at once, whose
 * runtime would then be recorded into the old record.
 */
static __always_inline __u64 namespace_id(struct mnt_namespace *ns, bool has_btf_task)
{
	if (bpf_core_field_exists(struct ns_common, ns_id))
		return has_btf_task ? ns->ns.ns_id : BPF_CORE_READ(ns, ns.ns_id);
	return has_btf_task ? ns->seq : BPF_CORE_READ(ns, seq);
}

/* Argument `index` of the syscall entering with `regs`, by the ABI's
 * calling convention. */
static __always_inline __u64 syscall_arg(struct pt_regs *regs, __u32 abi, __u32 index)
{
	bool ia32 = abi == ABI_X86;

	switch (index) {
	case 0:
		return ia32 ? BPF_CORE_READ(regs, bx) : BPF_CORE_READ(regs, di);
	case 1:
		return ia32 ? BPF_CORE_READ(regs, cx) : BPF_CORE_READ(regs, si);
	case 2:
		return BPF_CORE_READ(regs, dx);
	case 3:
		return ia32 ? BPF_CORE_READ(regs, si) : BPF_CORE_READ(regs, r10);
	case 4:
		return ia32 ? BPF_CORE_READ(regs, di) : BPF_CORE_READ(regs, r8);
	default:
		return ia32 ? BPF_CORE_READ(regs, bp) : BPF_CORE_READ(regs, r9);
	}
}

/* Keeps the watched argument values of syscall `nr`: a map update (a kernel
 * call) only for the few watched syscalls of traced containers. */
static __always_inline void keep_args(struct container_record *set, struct pt_regs *regs,
				      __u32 mntns, __u32 abi, __u32 nr)
{
	struct arg_key key = {.mntns = mntns, .abi = abi};
	__u8 one = 1;

#pragma unroll
	for (__u32 i = 0; i < ARG_WATCHES; i++) {
		__u32 at = abi * ARG_WATCHES + i;
		struct arg_watch *watch = &set->watches[at];
		/* int: before 6.4 the map's update returns int, and the verifier
		 * calls it directly, leaving the upper half of the register 0
		 * (a long held 4294967279 for -EEXIST on 5.10). */
		int err;

		if (watch->nr != (__s32)nr)
			continue;
		/* Past the bound the rule drops its arguments anyway. */
		if (set->arg_distinct[at] > ARG_VALUES)
			continue;
		key.watch = i;
		key.value = syscall_arg(regs, abi, watch->arg) & watch->mask;
		err = bpf_map_update_elem(&arg_values, &key, &one, BPF_NOEXIST);
		if (err == 0)
			__sync_fetch_and_add(&set->arg_distinct[at], 1);
		else if (err != -EEXIST_ERRNO)
			set->arg_lost[at] = (__u8)-err;
	}
}

/*
 * Files a call of the runtime's setup, stamped with the root filesystem
 * changes made so far. Every change a runtime makes to the container's
 * mount tree (mount, pivot_root, umount2: ROOTFS_CHANGES in src/handoff.rs)
 * comes before it attaches the container's filter, which could forbid it;
 * so the calls whose last stamp is the final one are the only ones that can
 * fall after that point: the hand-off src/handoff.rs adds to a profile
 * recorded without a filter. A stamp seen SETUP_STAMPS changes earlier
 * looks final too, which only adds a name. A session's calls (phase
 * PHASE_SESSION_SETUP) come after the container's tree is made: they are
 * filed like the workload's, with neither stamps nor argument values.
 */
static __always_inline void record_setup(struct container_record *set, __u32 slot, __u8 mark)
{
	__u8 stamp;

	if (mark & MARK_ROOTFS)
		set->rootfs_changes++;
	stamp = 1 + set->rootfs_changes % SETUP_STAMPS;
	if (set->seen[slot] != stamp)
		set->seen[slot] = stamp;
}

/* Files syscall `id`, entering with `regs`, in the record of the current
 * task's container, if it has one. Setting a slot and keeping a value are
 * idempotent, so a syscall seen twice (see record_syscall_again) is
 * recorded once; only out_of_range and rootfs_changes count it twice (the
 * latter only ever compares its stamps for equality). */
static __always_inline int record_entry(struct pt_regs *regs, long id)
{
	bool has_btf_task =
		bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
	struct container_record *set;
	struct task_struct *task;
	struct mnt_namespace *ns;
	__u32 mntns, status, slot;
	__u64 ns_id;
	__u32 abi = ABI_X86_64;
	int seccomp_mode;
	__u32 phase;
	__u8 *mark;

	if (has_btf_task) {
		/* 5.11+: a BTF pointer, read with plain loads (no helper calls). */
		task = bpf_get_current_task_btf();
		ns = task->nsproxy->mnt_ns;
		mntns = ns->ns.inum;
	} else {
		/* 5.10: the helper is missing, fall back to probe reads. */
		task = (struct task_struct *)bpf_get_current_task();
		ns = BPF_CORE_READ(task, nsproxy, mnt_ns);
		mntns = BPF_CORE_READ(ns, ns.inum);
	}

	set = find_record(mntns);
	if (!set)
		return 0;
	/* The record is registered while the container's runtime waits in
	 * the prestart hook, so the first namespace seen with this inode is
	 * the container's; one that reuses the inode later is not. */
	ns_id = namespace_id(ns, has_btf_task);
	if (!set->ns_id)
		set->ns_id = ns_id;
	else if (set->ns_id != ns_id)
		return 0;

	/* Same choice as above: plain loads on 5.11+, probe reads on 5.10. */
	if (has_btf_task) {
		seccomp_mode = task->seccomp.mode;
		status = task->thread_info.status;
	} else {
		seccomp_mode = BPF_CORE_READ(task, seccomp.mode);
		status = BPF_CORE_READ(task, thread_info.status);
	}
	if (seccomp_mode == SECCOMP_MODE_FILTER) {
		phase = PHASE_FILTERED;
	} else if (runs_own_program(task, ns, has_btf_task)) {
		phase = PHASE_UNFILTERED_WORKLOAD;
		if (!set->workload_ran)
			set->workload_ran = 1;
	} else {
		phase = set->workload_ran ? PHASE_SESSION_SETUP : PHASE_RUNTIME_SETUP;
	}
	if (status & TS_COMPAT) {
		abi = ABI_X86;
	} else if (id & X32_SYSCALL_BIT) {
		abi = ABI_X32;
		id &= ~X32_SYSCALL_BIT;
	}

	if (id < 0 || id >= SYSCALL_SLOTS) {
		__sync_fetch_and_add(&set->out_of_range, 1);
		return 0;
	}
	slot = (phase * ABI_COUNT + abi) * SYSCALL_SLOTS + (__u32)id;
	mark = &set->marks[abi * SYSCALL_SLOTS + (__u32)id];
	if (phase == PHASE_RUNTIME_SETUP) {
		record_setup(set, slot, *mark);
		return 0;
	}
	/* Read before write: after the first call the cache line stays shared. */
	if (!set->seen[slot])
		set->seen[slot] = 1;
	/* A runtime's setup never meets the container's filter: its
	 * arguments (clone with CLONE_NEW*) need no rule. */
	if ((*mark & MARK_ARGS) && phase != PHASE_SESSION_SETUP)
		keep_args(set, regs, mntns, abi, (__u32)id);
	return 0;
}

/*
 * A raw tracepoint, not tp_btf: a tp_btf program makes libbpf parse the whole
 * kernel BTF to find its attach point (9-14 ms per container start), while a
 * raw_tp one only needs the few types of vmlinux_min.h, which the tracer
 * caches (src/tracer/kernel_btf.rs). Same hook, same arguments.
 */
SEC("raw_tp/sys_enter")
int BPF_PROG(record_syscall, struct pt_regs *regs, long id)
{
	return record_entry(regs, id);
}

/*
 * The same program once more, loaded only where the kernel runs programs on
 * the syscall tracepoints preemptibly (7.x; src/tracer/preemption.rs says
 * how the tracer tells). The kernel runs a program at most once at a time on
 * a CPU: while a task is preempted inside it, the syscalls of every other
 * task on that CPU skip it (its recursion_misses count them), and a
 * container's syscall made then would be lost. A second program is a second
 * chance: a syscall is lost only when tasks are preempted inside both at
 * once, and the tracer reports the second one's misses.
 */
SEC("raw_tp/sys_enter")
int BPF_PROG(record_syscall_again, struct pt_regs *regs, long id)
{
	return record_entry(regs, id);
}

/* Never read by the program: one instance of each type user space shares,
 * so that the skeleton emits them (src/tracer/record.rs). The tracer does
 * not create the .bss map that holds them. */
struct container_record _record;
struct arg_key _arg_key;
enum recorded_abi _abi;
enum recorded_phase _phase;
enum recorder_limits _limits;
enum syscall_mark _mark;

char LICENSE[] SEC("license") = "Dual BSD/GPL";
