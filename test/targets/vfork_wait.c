/* vfork_wait SECONDS: a tree that cannot be frozen for SECONDS. The parent vforks; until the
 * child exits, the parent sleeps in the kernel where ptrace's interrupt does not reach it (the
 * vfork wait is killable, not interruptible), so a freeze waits for it. Prints READY <pid>
 * first; on SIGUSR1 (taken once the vfork is over) it checks the child ended well, and that it
 * was never stopped meanwhile (its SIGCHLD handler ran once). PASS or FAIL: lines. */
#include "target.h"
#include <sys/wait.h>
#include <time.h>

static volatile sig_atomic_t chld;

static void on_chld(int sig) { (void)sig; chld++; }

int main(int argc, char **argv)
{
	start(0);
	if (argc < 2)
		die("usage: vfork_wait SECONDS");
	struct timespec ts = { atoi(argv[1]), 0 };
	signal(SIGCHLD, on_chld);
	printf("READY %d\n", getpid());
	pid_t child = vfork();
	if (child < 0)
		die("vfork");
	if (child == 0) {
		/* only raw syscalls in the child: it runs on the parent's stack */
		syscall(SYS_nanosleep, &ts, NULL);
		syscall(SYS_exit, 7);
	}
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
		fail("the vfork child ended with status %#x, not exit 7", st);
	wait_usr1();
	if (chld != 1)
		fail("SIGCHLD handled %d times", (int)chld);
	return finish();
}
