/* tree WORKDIR: a process tree that checks its own shape after a restore.
 *
 *   root (session leader, started by setsid)
 *    +- A   own process group          +- G  grandchild, in A's group
 *    +- B   joins A's process group
 *    +- C   own session (setsid)
 *    +- Z   exits with status 7, left unreaped (a zombie)
 *    +- S   stops itself with SIGSTOP
 *
 * Prints READY <pid> once all are set up. On SIGUSR1 the root checks that Z is still its zombie
 * with status 7 and S is stopped, tells every child to check itself (pid, parent, group, session
 * against what it recorded before) and collects their verdicts: PASS or FAIL: lines. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;
static int failures;

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	failures++;
}

struct ident { pid_t pid, ppid, pgid, sid; };

static struct ident now(void)
{
	struct ident i = { getpid(), getppid(), getpgrp(), getsid(0) };
	return i;
}

static void wait_usr1(void)
{
	sigset_t none;
	sigemptyset(&none);
	while (!got_usr1)
		sigsuspend(&none);
}

/* A child: record who it is, wait, then compare; exit 0 if unchanged. Reports via its status. */
static int child_check(const char *name, struct ident before)
{
	wait_usr1();
	struct ident after = now();
	int bad = 0;
	if (memcmp(&before, &after, sizeof before) != 0) {
		printf("FAIL: %s was pid %d ppid %d pgid %d sid %d, now pid %d ppid %d pgid %d sid %d\n", name,
		       before.pid, before.ppid, before.pgid, before.sid, after.pid, after.ppid, after.pgid, after.sid);
		bad = 1;
	}
	return bad;
}

static pid_t spawn(const char *name, void (*setup)(void), pid_t join_group)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid)
		return pid;
	if (setup)
		setup();
	if (join_group && setpgid(0, join_group)) {
		perror("setpgid");
		_exit(2);
	}
	_exit(child_check(name, now()));
}

static void own_session(void) { setsid(); }

static pid_t grandchild;
static void parent_of_g(void)
{
	setpgid(0, 0);
	struct ident me = now();
	grandchild = fork();
	if (grandchild == 0)
		_exit(child_check("G", now()));
	wait_usr1();
	kill(grandchild, SIGUSR1);
	int st;
	int bad = child_check("A", me);
	if (waitpid(grandchild, &st, 0) != grandchild || !WIFEXITED(st) || WEXITSTATUS(st))
		bad = 1;
	_exit(bad);
}

static pid_t a_pid;

int main(void)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	/* children inherit the handler; block SIGUSR1 outside sigsuspend so none is lost */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);

	struct ident root = now();
	a_pid = fork();
	if (a_pid == 0)
		parent_of_g();
	usleep(50000);
	pid_t b = spawn("B", NULL, a_pid);
	pid_t c = spawn("C", own_session, 0);
	pid_t z = fork();
	if (z == 0)
		_exit(7);
	pid_t s = fork();
	if (s == 0) {
		raise(SIGSTOP);
		_exit(0);
	}
	/* wait until B joined A's group, C has its session, Z is dead and S is stopped */
	for (int i = 0; i < 500; i++) {
		siginfo_t si = { 0 };
		int zdead = waitid(P_PID, z, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == z;
		char path[64], st = 0;
		snprintf(path, sizeof path, "/proc/%d/stat", s);
		FILE *f = fopen(path, "r");
		if (f) {
			fscanf(f, "%*d %*s %c", &st);
			fclose(f);
		}
		if (zdead && st == 'T' && getpgid(b) == a_pid && getsid(c) == c && getpgid(a_pid) == a_pid)
			break;
		usleep(10000);
	}
	printf("READY %d\n", getpid());
	wait_usr1();

	struct ident after = now();
	if (memcmp(&root, &after, sizeof root) != 0)
		fail("root was pid %d pgid %d sid %d, now pid %d pgid %d sid %d", root.pid, root.pgid, root.sid, after.pid,
		     after.pgid, after.sid);
	siginfo_t si = { 0 };
	if (waitid(P_PID, s, &si, WSTOPPED | WNOHANG) != 0 || si.si_pid != s || si.si_code != CLD_STOPPED)
		fail("S (pid %d) is not reported stopped to its parent", s);
	int st;
	if (waitpid(z, &st, WNOHANG) != z)
		fail("Z (pid %d) is not a zombie child any more (%s)", z, strerror(errno));
	else if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
		fail("Z exit status is 0x%x, expected exit 7", st);
	kill(s, SIGCONT);
	pid_t kids[] = { a_pid, b, c, s };
	const char *names[] = { "A", "B", "C", "S" };
	for (int i = 0; i < 3; i++)
		kill(kids[i], SIGUSR1);
	for (int i = 0; i < 4; i++) {
		if (waitpid(kids[i], &st, 0) != kids[i])
			fail("waitpid %s (pid %d): %s", names[i], kids[i], strerror(errno));
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail("%s (pid %d) reported failure (status 0x%x)", names[i], kids[i], st);
	}
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
