/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types the recorder touches, declared for CO-RE.
 *
 * We pin this minimal header instead of a full bpftool-generated vmlinux.h:
 * the build must not depend on the build machine's BTF, and these fields are
 * all libbpf needs to relocate against the running kernel's BTF at load time.
 * preserve_access_index makes every access below a CO-RE relocation, so the
 * field order and padding here do not matter; only names and types do.
 * Checked against the BTF of Debian kernels 5.10, 6.1, 6.12, 6.18 and 7.3
 * (the VM matrix loads the program on each).
 */
#ifndef __VMLINUX_MIN_H__
#define __VMLINUX_MIN_H__

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

/* BPF map kinds and flags used by the SEC(".maps") definitions. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_ARRAY_OF_MAPS = 12,
};

/* Only used for bpf_core_enum_value_exists(): does this kernel know the helper? */
enum bpf_func_id {
	BPF_FUNC_get_current_task_btf = 158,
};

/* include/uapi/linux/bpf.h: map update and creation flags. */
enum {
	BPF_NOEXIST = 1,
};
enum {
	BPF_F_NO_PREALLOC = 1,
};

/* arch/x86/include/asm/ptrace.h: the registers that carry syscall
 * arguments (x86_64: di si dx r10 r8 r9; i386: bx cx dx si di bp). */
struct pt_regs {
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long bp;
	unsigned long bx;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long cx;
} __attribute__((preserve_access_index));

/* ns_id: a namespace's 64-bit id, never reused (6.18+; see mnt_namespace). */
struct ns_common {
	unsigned int inum;
	__u64 ns_id;
} __attribute__((preserve_access_index));

/* seq: before 6.18, the mount namespace's never-reused sequence number. */
struct mnt_namespace {
	struct ns_common ns;
	__u64 seq;
} __attribute__((preserve_access_index));

struct nsproxy {
	struct mnt_namespace *mnt_ns;
} __attribute__((preserve_access_index));

struct thread_info {
	__u32 status;
} __attribute__((preserve_access_index));

/* include/linux/seccomp_types.h: mode is SECCOMP_MODE_FILTER (2) once a
 * filter is attached; fork and execve keep it. */
struct seccomp {
	int mode;
} __attribute__((preserve_access_index));

struct vfsmount {
	void *mnt_root;
} __attribute__((preserve_access_index));

/* fs/mount.h: the mount a struct vfsmount is embedded in, and the mount
 * namespace that mount belongs to. */
struct mount {
	struct vfsmount mnt;
	struct mnt_namespace *mnt_ns;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
} __attribute__((preserve_access_index));

struct mm_struct {
	struct file *exe_file;
} __attribute__((preserve_access_index));

struct task_struct {
	struct thread_info thread_info;
	struct nsproxy *nsproxy;
	struct seccomp seccomp;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

#endif /* __VMLINUX_MIN_H__ */
