/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared between bpf/recorder.bpf.c and the Rust tracer: the skeleton emits
 * every type below into its `types` module (recorder.bpf.c holds a dummy
 * instance of each), so a field or a row added here reaches Rust with no
 * other edit. Constants are enumerators, not #defines, for the same reason.
 * Keep it free of kernel types.
 */
#ifndef __RECORDER_H__
#define __RECORDER_H__

/* The ABI a syscall entered through, as seccomp sees it (AUDIT_ARCH_*). */
enum recorded_abi {
	ABI_X86_64 = 0,
	ABI_X86 = 1, /* ia32 compat: int 0x80, sysenter, 32-bit syscall */
	ABI_X32 = 2, /* x86_64 entry with __X32_SYSCALL_BIT set */
	ABI_COUNT = 3,
};

/*
 * Why a syscall was recorded: the program files each entry under one of
 * these (recorder.bpf.c decides which), and user space decides what each
 * phase contributes to the profile (src/handoff.rs).
 */
enum recorded_phase {
	/* The task's seccomp filter let it through: the container's filter
	 * (or one the workload added) was in force. */
	PHASE_FILTERED = 0,
	/* No filter, but the task runs a program from the container's own
	 * mounts: the workload of a container without a filter. */
	PHASE_UNFILTERED_WORKLOAD = 1,
	/* No filter, and a program from outside the container: the runtime
	 * setting the container up. */
	PHASE_RUNTIME_SETUP = 2,
	/* The same, once the workload of a container without a filter has
	 * run: a runtime setting up a session it starts in the running
	 * container (podman exec). */
	PHASE_SESSION_SETUP = 3,
	PHASE_COUNT = 4,
};

enum recorder_limits {
	/* One more than the largest syscall number we keep per ABI (x32's top
	 * is 547 after its bit is removed; x86_64 and i386 stay below 500 in
	 * 7.x). */
	SYSCALL_SLOTS = 1024,
	/*
	 * Where the program finds a container: its mount namespace inode
	 * modulo CONTAINER_SLOTS picks a slot, and the record sits in that slot
	 * or one of the next CONTAINER_PROBES - 1 (wrapping). Namespace inodes
	 * come from one counter shared by every namespace kind, so containers
	 * spread over the slots and collide only after thousands of
	 * namespaces; a collision takes the next free slot of the window. Both
	 * powers of two.
	 */
	CONTAINER_SLOTS = 4096,
	CONTAINER_PROBES = 4,
	/* Syscalls per ABI whose argument values are kept (src/arg_rules.rs
	 * names them). */
	ARG_WATCHES = 8,
	/* Distinct values a rule is written for, per container, ABI and watch;
	 * the program keeps one more, which shows the bound was passed. */
	ARG_VALUES = 16,
	/* How many values a runtime-setup entry of `seen` cycles through:
	 * 1 + (rootfs_changes % SETUP_STAMPS), never 0 (unseen). */
	SETUP_STAMPS = 255,
	/* Entries of the shared value map: ARG_VALUES + 1 values of every
	 * watch of every ABI for 40 containers at once (a container past that
	 * gets names without argument rules, and the log says so). */
	ARG_ENTRIES = 16384,
};

/* What user space marks a syscall of an ABI with, in a record's `marks`. */
enum syscall_mark {
	/* An argument watch is for this syscall (keep_args). */
	MARK_ARGS = 1,
	/* It changes the container's root filesystem (mount, pivot_root, ...):
	 * the program counts these in the runtime's setup (rootfs_changes). */
	MARK_ROOTFS = 2,
};

/*
 * An argument the program keeps for one syscall of one ABI: the value of
 * argument `arg` (0-5) masked with `mask`, for syscall number `nr` (-1: an
 * unused watch). Written by user space when it registers a container.
 */
struct arg_watch {
	__s32 nr;
	__u32 arg;
	__u64 mask;
};

/* A key of the shared value map: `value` was seen for watch `watch` of ABI
 * `abi` in the container of mount namespace `mntns`. */
struct arg_key {
	__u32 mntns;
	__u8 abi;
	__u8 watch;
	__u16 pad;
	__u64 value;
};

/*
 * One traced container: what it did, and which tracer registered it.
 *
 * seen[(phase * ABI_COUNT + abi) * SYSCALL_SLOTS + nr] is not 0 once syscall
 * nr entered through abi in that phase: 1 for the filtered, workload and
 * session phases; in the runtime's setup, 1 + rootfs_changes % SETUP_STAMPS as it was
 * at the last such call, which tells the setup's last steps, those after its
 * last root filesystem change (flat, not nested arrays: libbpf-cargo
 * cannot derive Default for nested arrays, so the emitted Rust type would
 * not compile). A byte per
 * syscall rather than a bit: setting it is a plain store, which needs no BPF
 * atomic OR (absent on 5.10) and races harmlessly.
 */
struct container_record {
	/* Written by user space only: the mount namespace inode this record
	 * is for (slots are shared by every inode with the same remainder). */
	__u32 mntns;
	/* Written by the program at the first syscall it records: the
	 * namespace's 64-bit id, which the kernel never reuses (inodes are
	 * reused as soon as a namespace is freed). */
	__u64 ns_id;
	__u8 seen[PHASE_COUNT * ABI_COUNT * SYSCALL_SLOTS];
	/* Entries whose number is outside the table (e.g. syscall(-1)). */
	__u64 out_of_range;
	/* Indexed [abi * ARG_WATCHES + watch]: what to keep (written by user
	 * space), how many distinct values went into the value map, and the
	 * error number once a value could not be kept (map full or busy): no
	 * value is ever lost silently, a rule then allows the name without
	 * arguments. Only calls outside the runtime's setup are kept. */
	struct arg_watch watches[ABI_COUNT * ARG_WATCHES];
	/* Written by user space only: marks[abi * SYSCALL_SLOTS + nr] holds
	 * the syscall_mark bits of syscall nr of abi; MARK_ARGS where a watch
	 * above is for it, so that every other syscall costs the program one
	 * load here, not a pass over the watches. */
	__u8 marks[ABI_COUNT * SYSCALL_SLOTS];
	/* Written by the program: the MARK_ROOTFS calls of the runtime's setup
	 * so far (a plain increment: two racing ones may count once, which
	 * only merges two stamps). */
	__u32 rootfs_changes;
	/* Written by the program: 1 once the workload of a container without
	 * a filter made a call; from then on the runtime's calls are a
	 * session's (PHASE_SESSION_SETUP). */
	__u8 workload_ran;
	__u32 arg_distinct[ABI_COUNT * ARG_WATCHES];
	__u8 arg_lost[ABI_COUNT * ARG_WATCHES];
	/* Written by user space only: the registering tracer's pid and start
	 * time (/proc/PID/stat field 22), so that the next tracer can remove
	 * the record of one that died without cleaning up. */
	__u32 owner_pid;
	__u64 owner_start_time;
};

#endif /* __RECORDER_H__ */
