/* fork_fds WORKDIR: descriptions shared between a parent and its child, the way fork leaves
 * them. Both hold one read fd on a file (one offset), the two ends of a pipe that has unread
 * data from before the dump, and a FIFO. Prints READY <pid>; on SIGUSR1 the child reads through
 * the shared fd (moving the parent's offset), then writes to the pipe; the parent checks its
 * offset moved, reads the old data and the child's message: PASS or FAIL: lines. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }
static int failures;

static void wait_usr1(void)
{
	sigset_t none;
	sigemptyset(&none);
	while (!got_usr1)
		sigsuspend(&none);
}

int main(int argc, char **argv)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2)
		return 2;
	char path[4096];
	snprintf(path, sizeof path, "%s/shared.txt", argv[1]);
	FILE *f = fopen(path, "w");
	fputs("0123456789abcdefghij", f);
	fclose(f);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);

	int file = open(path, O_RDONLY);
	char buf[64];
	if (file < 0 || read(file, buf, 5) != 5)
		return 2;
	int p[2];
	if (pipe(p) || write(p[1], "before-dump|", 12) != 12)
		return 2;
	pid_t child = fork();
	if (child == 0) {
		wait_usr1();
		int bad = read(file, buf, 5) != 5 || memcmp(buf, "56789", 5) != 0;
		bad |= write(p[1], "from-child", 10) != 10;
		_exit(bad);
	}
	printf("READY %d\n", getpid());
	wait_usr1();
	kill(child, SIGUSR1);
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		printf("FAIL: the child could not read the shared file or write the pipe (0x%x)\n", st), failures++;
	off_t pos = lseek(file, 0, SEEK_CUR);
	if (pos != 10)
		printf("FAIL: the shared offset is %ld, expected 10 after the child's read\n", (long)pos), failures++;
	close(p[1]);
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	if (strcmp(buf, "before-dump|from-child") != 0)
		printf("FAIL: the pipe holds \"%s\", expected \"before-dump|from-child\"\n", buf), failures++;
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
