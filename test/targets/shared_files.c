/* shared_files: a parent and a child made with clone(CLONE_FILES | CLONE_FS) share one fd table
 * and one cwd. Prints READY <pid>; on SIGUSR1 the parent opens /dev/null at fd 77 and chdir()s
 * to /tmp, then signals the child, which must see fd 77 and the new cwd: its exit status says;
 * the parent prints PASS or FAIL: lines. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static void wait_usr1(void)
{
	sigset_t none;
	sigemptyset(&none);
	while (!got_usr1)
		sigsuspend(&none);
}

int main(void)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	if (chdir("/"))
		return 2;
	/* a raw clone without CLONE_VM behaves like fork, with the fd table and fs shared */
	pid_t child = (pid_t)syscall(SYS_clone, CLONE_FILES | CLONE_FS | SIGCHLD, 0, 0, 0, 0);
	if (child < 0) {
		perror("clone");
		return 2;
	}
	if (child == 0) {
		wait_usr1();
		char cwd[256] = "";
		int ok = fcntl(77, F_GETFD) >= 0 && getcwd(cwd, sizeof cwd) && strcmp(cwd, "/tmp") == 0;
		_exit(ok ? 0 : 1);
	}
	printf("READY %d\n", getpid());
	wait_usr1();
	int failures = 0;
	int fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 77) != 77 || chdir("/tmp")) {
		printf("FAIL: setting up fd 77 and cwd\n");
		failures++;
	}
	kill(child, SIGUSR1);
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("FAIL: the child does not share the fd table and cwd any more (status 0x%x)\n", st);
		failures++;
	}
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
