/* zombies: two children that die and are left unreaped, each with a name, blocked signals,
 * ignored and caught signals of its own: K kills itself with SIGKILL, E exits with status 3.
 * Prints READY <pid>; on SIGUSR1 the root reaps them and checks how each ended. PASS or FAIL:. */
#include "target.h"
#include <sys/prctl.h>
#include <sys/wait.h>

static void on_hup(int sig) { (void)sig; }

static pid_t child(const char *name, int kill_self)
{
	pid_t pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_NAME, name);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, kill_self ? SIGTERM : SIGALRM);
	sigprocmask(SIG_SETMASK, &block, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(kill_self ? SIGWINCH : SIGURG, SIG_IGN);
	signal(SIGHUP, on_hup);
	if (kill_self)
		raise(SIGKILL);
	_exit(3);
}

int main(void)
{
	start(1);
	pid_t k = child("zkilled", 1), e = child("zexited", 0);
	ready_and_wait();
	int st;
	if (waitpid(k, &st, 0) != k || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail("K (pid %d) did not end killed by SIGKILL (status 0x%x)", k, st);
	if (waitpid(e, &st, 0) != e || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
		fail("E (pid %d) did not end with exit status 3 (status 0x%x)", e, st);
	return finish();
}
