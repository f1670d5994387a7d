/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared between bpf/recorder.bpf.c and the Rust tracer (through the types
 * the libbpf-cargo skeleton emits). Keep it free of kernel types.
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

/* One more than the largest syscall number we keep per ABI (x32's top is
 * 547 after its bit is removed; x86_64 and i386 stay below 500 in 7.x). */
#define SYSCALL_SLOTS 1024

/* SYSCALL_SLOTS split in rows of 32: the Rust skeleton derives Default, which
 * Rust only has for arrays of up to 32 elements. Same memory as a flat row. */
#define SLOT_ROW 32

/*
 * One traced container: what it did, and which tracer registered it.
 *
 * seen[abi][nr / 32][nr % 32] is 1 once syscall nr entered. A byte per
 * syscall rather than a bit: setting it is a plain store, which needs no BPF
 * atomic OR (absent on 5.10) and races harmlessly.
 */
struct container_record {
	__u8 seen[ABI_COUNT][SYSCALL_SLOTS / SLOT_ROW][SLOT_ROW];
	/* Entries whose number is outside the table (e.g. syscall(-1)). */
	__u64 out_of_range;
	/* Written by user space only: the registering tracer's pid and start
	 * time (/proc/PID/stat field 22), so that the next tracer can remove
	 * the record of one that died without cleaning up. */
	__u32 owner_pid;
	__u64 owner_start_time;
};

#endif /* __RECORDER_H__ */
