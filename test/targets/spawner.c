/* spawner: forks short-lived children and creates short-lived threads in a tight loop, so a
 * dump catches the tree while it changes. Prints READY <pid>; on SIGUSR1 stops, checks that
 * every fork and join since the start worked (each child's exit status seen exactly once) and
 * that the loop kept going after the restore: PASS or FAIL: lines. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }
static void *thread_body(void *arg) { return arg; }

int main(void)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	unsigned long rounds = 0, at_ready = 0;
	int failures = 0;
	while (!got_usr1) {
		pid_t child = fork();
		if (child == 0)
			_exit((int)(rounds % 200) + 1);
		if (child < 0) {
			printf("FAIL: fork: %s\n", strerror(errno));
			failures++;
			break;
		}
		pthread_t th;
		void *ret = NULL;
		if (pthread_create(&th, NULL, thread_body, (void *)rounds) || pthread_join(th, &ret) || ret != (void *)rounds) {
			printf("FAIL: thread round %lu\n", rounds);
			failures++;
			break;
		}
		int st;
		pid_t r;
		while ((r = waitpid(child, &st, 0)) < 0 && errno == EINTR)
			;
		if (r != child || !WIFEXITED(st) || WEXITSTATUS(st) != (int)(rounds % 200) + 1) {
			printf("FAIL: round %lu: child %d: waitpid gave %d status 0x%x (%s)\n", rounds, child, r, st,
			       r < 0 ? strerror(errno) : "");
			failures++;
			break;
		}
		if (++rounds == 50) {
			at_ready = rounds;
			printf("READY %d\n", getpid());
		}
	}
	printf("rounds %lu\n", rounds);
	if (rounds <= at_ready + 1) {
		printf("FAIL: the loop did not go on after READY (%lu rounds)\n", rounds);
		failures++;
	}
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
