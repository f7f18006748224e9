/* fork_fds WORKDIR: descriptions shared between a parent and its child, the way fork leaves
 * them. Both hold one read fd on a file (one offset), the two ends of a pipe that has unread
 * data from before the dump, a FIFO, and a close-on-exec fd; the child checks the fds' close-on-exec
 * flags are as inherited. Prints READY <pid>; on SIGUSR1 the child reads through
 * the shared fd (moving the parent's offset), then writes to the pipe; the parent checks its
 * offset moved, reads the old data and the child's message: PASS or FAIL: lines. */
#include "target.h"
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


int main(int argc, char **argv)
{
	start(1);
	if (argc != 2)
		return 2;
	char path[4096];
	snprintf(path, sizeof path, "%s/shared.txt", argv[1]);
	FILE *f = fopen(path, "w");
	fputs("0123456789abcdefghij", f);
	fclose(f);

	int file = open(path, O_RDONLY);
	char buf[64];
	if (file < 0 || read(file, buf, 5) != 5)
		return 2;
	int p[2];
	if (pipe(p) || write(p[1], "before-dump|", 12) != 12)
		return 2;
	char fifo_path[4096];
	snprintf(fifo_path, sizeof fifo_path, "%s/fifo", argv[1]);
	if (mkfifo(fifo_path, 0600))
		return 2;
	int fifo = open(fifo_path, O_RDWR);
	int marked = open(path, O_RDONLY | O_CLOEXEC);
	if (fifo < 0 || marked < 0)
		return 2;
	pid_t child = fork();
	if (child == 0) {
		wait_usr1();
		int bad = read(file, buf, 5) != 5 || memcmp(buf, "56789", 5) != 0;
		bad |= write(p[1], "from-child", 10) != 10;
		/* inherited fds are as fork left them: close-on-exec only where it was set */
		int plain[] = { file, p[0], p[1], fifo };
		for (unsigned i = 0; i < sizeof plain / sizeof plain[0]; i++)
			if (fcntl(plain[i], F_GETFD) != 0)
				bad |= 2;
		if (fcntl(marked, F_GETFD) != FD_CLOEXEC)
			bad |= 4;
		_exit(bad);
	}
	printf("READY %d\n", getpid());
	wait_usr1();
	kill(child, SIGUSR1);
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("the child could not read the shared file or write the pipe, or its close-on-exec flags changed (0x%x)", st);
	if (fcntl(fifo, F_GETFD) != 0 || fcntl(marked, F_GETFD) != FD_CLOEXEC)
		fail("the parent's close-on-exec flags changed");
	off_t pos = lseek(file, 0, SEEK_CUR);
	if (pos != 10)
		fail("the shared offset is %ld, expected 10 after the child's read", (long)pos);
	close(p[1]);
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	if (strcmp(buf, "before-dump|from-child") != 0)
		fail("the pipe holds \"%s\", expected \"before-dump|from-child\"", buf);
	return finish();
}
