/*
 * timeit: runs a command and prints its wall time and CPU time.
 *
 * The bench needs the cost of a syscall loop measured where the loop runs,
 * including inside a container, where the bench cannot wait4() on the
 * process itself. The fixture image has busybox, whose `time` prints only
 * 10 ms steps and whose `date` has no nanoseconds, so this static helper is
 * bind-mounted into the container instead of changing the image.
 *
 * CPU time (user + system of the waited child and its waited descendants)
 * is the figure the bench prefers: on this shared VM a busy neighbour
 * delays the loop without adding to its CPU time, and the BPF program runs
 * in the syscalling task's context, so its cost is counted there.
 *
 * With -c CPU the runs are pinned to that CPU: this VM's vCPUs are fast or
 * slow (a busy hyperthread sibling on the host, ~25%) independently of each
 * other, so a loop the scheduler places on either one mixes both states.
 *
 * With -s the runs get a seccomp filter that allows everything (after
 * PR_SET_NO_NEW_PRIVS), as a container's tasks have one: the recorder
 * files a task with a filter without looking further, and the kernel takes
 * the same slow syscall path for it as for a container's.
 *
 * With -n R the command runs R times in a row. Each run prints one line on
 * stdout after the command's own output; start and end are CLOCK_MONOTONIC,
 * which containers share with the host, so the bench can tell which of its
 * attach windows a run fell in:
 *   timeit start_ns=<n> end_ns=<n> wall_ns=<n> cpu_ns=<n> status=<code>
 * where code is the exit code or 128 + signal. Stops at the first failure.
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static unsigned long long tv_ns(struct timeval tv)
{
	return (unsigned long long)tv.tv_sec * 1000000000ULL + tv.tv_usec * 1000ULL;
}

/* A filter of one instruction: allow. */
static int allow_all_filter(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = {.len = 1, .filter = &allow};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		perror("timeit: seccomp");
		return -1;
	}
	return 0;
}

static int run_once(char **argv)
{
	unsigned long long start, end;
	struct rusage ru;
	int status, code;
	pid_t pid;

	start = now_ns();
	pid = fork();
	if (pid < 0) {
		perror("timeit: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		perror("timeit: exec");
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("timeit: wait4");
		return 1;
	}
	end = now_ns();
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	printf("timeit start_ns=%llu end_ns=%llu wall_ns=%llu cpu_ns=%llu "
	       "status=%d\n",
	       start, end, end - start, tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime), code);
	/* The child's output went straight to our stdout; ours must follow
	 * it, not sit in a buffer until exit. */
	fflush(stdout);
	return code;
}

int main(int argc, char **argv)
{
	long runs = 1, cpu = -1;
	int first = 1, code = 0, filtered = 0;

	while (first < argc && argv[first][0] == '-') {
		if (!strcmp(argv[first], "-s")) {
			filtered = 1;
			first += 1;
			continue;
		}
		if (first + 1 >= argc)
			break;
		if (!strcmp(argv[first], "-n"))
			runs = strtol(argv[first + 1], NULL, 10);
		else if (!strcmp(argv[first], "-c"))
			cpu = strtol(argv[first + 1], NULL, 10);
		else
			break;
		first += 2;
	}
	if (argc <= first || runs < 1) {
		fprintf(stderr, "usage: timeit [-s] [-n RUNS] [-c CPU] COMMAND [ARG...]\n");
		return 2;
	}
	if (filtered && allow_all_filter() < 0)
		return 1;
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof set, &set) < 0) {
			perror("timeit: sched_setaffinity");
			return 1;
		}
	}
	for (long i = 0; i < runs && code == 0; i++)
		code = run_once(argv + first);
	return code;
}
