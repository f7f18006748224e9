/* forest PROCS THREADS: PROCS processes (this one and PROCS-1 children), each with THREADS
 * threads, all waiting. Prints READY <pid> when every one is up; on SIGUSR1 asks every child to
 * check itself (its thread count) and collects the verdicts: PASS or FAIL: lines. For the bench. */
#include <dirent.h>
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
static void *idle(void *arg) { for (;;) pause(); return arg; }

static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void start_threads(int threads)
{
	for (int i = 1; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, idle, NULL))
			exit(2);
	}
}

int main(int argc, char **argv)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 3)
		return 2;
	int procs = atoi(argv[1]), threads = atoi(argv[2]);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr1, none;
	sigemptyset(&usr1);
	sigemptyset(&none);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	int up[2];
	if (pipe(up))
		return 2;
	pid_t *kids = calloc((size_t)procs, sizeof *kids);
	for (int i = 1; i < procs; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			start_threads(threads);
			if (write(up[1], "x", 1) != 1)
				_exit(2);
			while (!got_usr1)
				sigsuspend(&none);
			_exit(thread_count() == threads ? 0 : 1);
		}
	}
	start_threads(threads);
	char c;
	for (int i = 1; i < procs; i++)
		if (read(up[0], &c, 1) != 1)
			return 2;
	printf("READY %d\n", getpid());
	while (!got_usr1)
		sigsuspend(&none);
	int failures = 0;
	if (thread_count() != threads)
		printf("FAIL: the root has %d threads, expected %d\n", thread_count(), threads), failures++;
	for (int i = 1; i < procs; i++)
		kill(kids[i], SIGUSR1);
	for (int i = 1; i < procs; i++) {
		int st;
		if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			printf("FAIL: child %d (pid %d) status 0x%x\n", i, kids[i], st), failures++;
	}
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
