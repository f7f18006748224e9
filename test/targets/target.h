/* The protocol every test target speaks: start like a daemon, print READY <pid>, wait for
 * SIGUSR1, check, print PASS or FAIL: lines, exit 0 or 1. */
#ifndef AMBER_TARGET_H
#define AMBER_TARGET_H
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;
static int failures;

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

__attribute__((unused, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	failures++;
}

__attribute__((unused)) static void die(const char *what)
{
	printf("SETUP ERROR: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(2);
}

/* Drops fds leaked by whatever launched us (so the fd table holds exactly what the target sets
 * up), line-buffers stdout, and installs the SIGUSR1 handler. With block, SIGUSR1 stays blocked
 * outside wait_usr1(), so a signal sent early (to a child, say) is never lost. */
__attribute__((unused)) static void start(int block)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	if (block) {
		sigset_t usr1;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		sigprocmask(SIG_BLOCK, &usr1, NULL);
	}
}

__attribute__((unused)) static void wait_usr1(void)
{
	sigset_t none;
	sigemptyset(&none);
	while (!got_usr1)
		sigsuspend(&none);
}

__attribute__((unused)) static void ready_and_wait(void)
{
	printf("READY %d\n", getpid());
	wait_usr1();
}

__attribute__((unused)) static int finish(void)
{
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
#endif
