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
 * Output, one line on stdout after the command's own output:
 *   timeit wall_ns=<n> cpu_ns=<n> status=<exit code or 128+signal>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
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

int main(int argc, char **argv)
{
	unsigned long long start, end;
	struct rusage ru;
	int status, code;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: timeit COMMAND [ARG...]\n");
		return 2;
	}
	start = now_ns();
	pid = fork();
	if (pid < 0) {
		perror("timeit: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		perror("timeit: exec");
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("timeit: wait4");
		return 1;
	}
	end = now_ns();
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	/* Flush the child's output first: it shares our stdout. */
	fflush(stdout);
	printf("timeit wall_ns=%llu cpu_ns=%llu status=%d\n", end - start,
	       tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime), code);
	return code;
}
