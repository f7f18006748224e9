#include "target.h"
/*
 * tracer: holds another process as its tracer, the way a debugger would, without stopping it
 * (PTRACE_SEIZE only). Usage: tracer PID. Prints READY, waits for SIGUSR1 and exits; its exit
 * lets the tracee go (the kernel detaches the tracees of an exiting tracer).
 */
#include <sys/ptrace.h>

int main(int argc, char **argv)
{
	start(0);
	if (argc != 2)
		die("usage: tracer PID");
	pid_t pid = atoi(argv[1]);
	if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0)
		die("PTRACE_SEIZE");
	ready_and_wait();
	return finish();
}
