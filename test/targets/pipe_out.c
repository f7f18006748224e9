#include "target.h"
/*
 * pipe_out: the writing end of a pipeline whose reader is not dumped. fd 3 is the write end of
 * a pipe (the launcher's `3>&1` inside `... | cat`); stdout is the log. Writes one line into the
 * pipe, prints READY, and after SIGUSR1 writes another: SIGPIPE is left at its default, so a
 * pipe that came back without a reader kills it. Then checks the write went through.
 */
#include <sys/stat.h>

int main(void)
{
	syscall(SYS_close_range, 4, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	struct stat st;
	if (fstat(3, &st) != 0 || !S_ISFIFO(st.st_mode))
		die("fd 3 is not a pipe");
	char line[64];
	int n = snprintf(line, sizeof line, "before %d\n", getpid());
	if (write(3, line, n) != n)
		die("write before");
	ready_and_wait();

	n = snprintf(line, sizeof line, "after restore %d\n", getpid());
	ssize_t w = write(3, line, n);
	if (w != n)
		fail("write into the pipe after restore: %zd (%s)", w, strerror(errno));
	if (fstat(3, &st) != 0 || !S_ISFIFO(st.st_mode))
		fail("fd 3 is no longer a pipe");
	return finish();
}
