/* shared_files: a parent and a child made with clone(CLONE_FILES | CLONE_FS) share one fd table
 * and one cwd. Prints READY <pid>; on SIGUSR1 the parent opens /dev/null at fd 77 and chdir()s
 * to /tmp, then signals the child, which must see fd 77 and the new cwd: its exit status says;
 * the parent prints PASS or FAIL: lines. */
#define _GNU_SOURCE
#include "target.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>


int main(void)
{
	start(1);
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
	int fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 77) != 77 || chdir("/tmp")) {
		fail("setting up fd 77 and cwd");
	}
	kill(child, SIGUSR1);
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fail("the child does not share the fd table and cwd any more (status 0x%x)", st);
	}
	return finish();
}
