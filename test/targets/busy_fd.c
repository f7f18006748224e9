/*
 * busy_fd [userfaultfd|io_uring|perf_event|dead_pidfd]: holds one fd of a kind amber has no
 * plugin for (userfaultfd by default), or a pidfd of a child that has exited and been reaped, at fd 100, so a dump must fail with a clear error and leave this
 * process running. Protocol as
 * skeleton: "READY <pid>", then on SIGUSR1 check the counter and the fd, print
 * PASS or FAIL: <what>, exit 0 or 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TICKS 10
#define UFFD_FD 100

static volatile sig_atomic_t got_usr1;
static volatile unsigned long counter;
static int loop_error;

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static void tick(void)
{
	struct timespec ts = { 0, 1000000 };
	counter++;
	while (nanosleep(&ts, &ts) == -1) {
		if (errno != EINTR) {
			loop_error = errno;
			break;
		}
		if (got_usr1)
			break;
	}
}

/* An fd of the named kind; io_uring and perf_event are made without mapping their rings. */
static int open_kind(const char *kind)
{
	if (!strcmp(kind, "io_uring")) {
		unsigned char params[120]; /* struct io_uring_params, zeroed: the kernel fills it */
		memset(params, 0, sizeof params);
		return (int)syscall(SYS_io_uring_setup, 4, params);
	}
	if (!strcmp(kind, "perf_event")) {
		struct perf_event_attr attr;
		memset(&attr, 0, sizeof attr);
		attr.size = sizeof attr;
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = PERF_COUNT_SW_TASK_CLOCK;
		attr.exclude_kernel = 1;
		attr.exclude_hv = 1;
		return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
	}
	if (!strcmp(kind, "dead_pidfd")) {
		pid_t child = fork();
		if (child == 0)
			_exit(0);
		int fd = (int)syscall(SYS_pidfd_open, child, 0);
		waitpid(child, NULL, 0);
		return fd;
	}
	return (int)syscall(SYS_userfaultfd, O_CLOEXEC);
}

int main(int argc, char **argv)
{
	/* Start like a daemon: drop fds leaked by whatever launched us, so the fd
	 * table holds exactly what this program sets up. */
	syscall(SYS_close_range, 3, ~0U, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	const char *kind = argc > 1 ? argv[1] : "userfaultfd";
	int fd = open_kind(kind);
	if (fd < 0 || dup3(fd, UFFD_FD, O_CLOEXEC) != UFFD_FD) {
		printf("SETUP ERROR: %s: %s\n", kind, strerror(errno));
		return 2;
	}
	close(fd);
	char link[256] = "";
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", UFFD_FD);
	ssize_t n = readlink(path, link, sizeof link - 1);
	link[n < 0 ? 0 : n] = 0;
	printf("holding fd %d -> %s\n", UFFD_FD, link);

	while (counter < READY_TICKS)
		tick();
	pid_t pid = getpid();
	printf("READY %d\n", pid);
	do
		tick();
	while (!got_usr1);

	int failed = 0;
	if (loop_error) {
		printf("FAIL: wait loop: %s\n", strerror(loop_error));
		failed = 1;
	}
	if (counter <= READY_TICKS) {
		printf("FAIL: counter %lu did not advance past %d\n", counter, READY_TICKS);
		failed = 1;
	}
	if (fcntl(UFFD_FD, F_GETFD) < 0) {
		printf("FAIL: fd %d (%s) is gone\n", UFFD_FD, kind);
		failed = 1;
	}
	if (getpid() != pid) {
		printf("FAIL: pid changed\n");
		failed = 1;
	}
	printf("ticks %lu\n", counter);
	if (failed)
		return 1;
	printf("PASS\n");
	return 0;
}
