/* orphans: a subreaper whose tree keeps members of a group and of a session whose leaders are
 * gone. Child A makes its own group, forks B into it and exits; child C makes its own session,
 * forks D into it and exits. B and D are reparented to this process. Prints READY <pid>; on
 * SIGUSR1 tells B and D to check that their group and session are still A's and C's old pids
 * and that this process is their parent: PASS or FAIL: lines. */
#include "target.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>


static void member(pid_t want_pgid, pid_t want_sid, pid_t want_ppid)
{
	sigset_t none;
	sigemptyset(&none);
	while (!got_usr1)
		sigsuspend(&none);
	int bad = 0;
	if (getpgrp() != want_pgid || getsid(0) != want_sid || getppid() != want_ppid) {
		printf("FAIL: pid %d has pgid %d sid %d ppid %d, expected %d %d %d\n", getpid(), getpgrp(), getsid(0), getppid(),
		       want_pgid, want_sid, want_ppid);
		bad = 1;
	}
	_exit(bad);
}

int main(void)
{
	start(0);
	sigset_t usr1, none;
	sigemptyset(&usr1);
	sigemptyset(&none);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid_t root = getpid(), sid = getsid(0);
	int up[2];
	if (pipe(up))
		return 2;
	pid_t a = fork();
	if (a == 0) {
		setpgid(0, 0);
		if (fork() == 0)
			member(getpgrp(), sid, root);
		_exit(0);
	}
	pid_t c = fork();
	if (c == 0) {
		setsid();
		if (fork() == 0)
			member(getpgrp(), getsid(0), root);
		_exit(0);
	}
	int st;
	waitpid(a, &st, 0);
	waitpid(c, &st, 0);
	usleep(100000); /* B and D are ours now */
	printf("READY %d\n", getpid());
	while (!got_usr1)
		sigsuspend(&none);
	int failures = 0, subreaper = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
	if (!subreaper)
		printf("FAIL: no longer a child subreaper\n"), failures++;
	pid_t kids[2];
	int n = 0;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", root, root);
	FILE *f = fopen(path, "r");
	while (f && n < 2 && fscanf(f, "%d", &kids[n]) == 1)
		n++;
	if (f)
		fclose(f);
	if (n != 2)
		printf("FAIL: %d children, expected B and D\n", n), failures++;
	for (int i = 0; i < n; i++) {
		kill(kids[i], SIGUSR1);
		if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			printf("FAIL: member %d reported failure (0x%x)\n", kids[i], st), failures++;
	}
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
