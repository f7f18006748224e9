/*
 * fd_changes: holds an eventfd, two timerfds (one periodic, one disarmed), an inotify fd with
 * one watch, a pipe, a signalfd and a fanotify group, prints "READY <pid>", and on SIGHUP changes
 * each of them from inside (eventfd written, periodic timer disarmed, the other armed, a second
 * inotify watch, O_NONBLOCK on the pipe's read end, SIGUSR2 added to the signalfd, a fanotify
 * mark) and prints "CHANGED", so `amber compare` has real differences to find. SIGUSR1 ends it
 * with PASS. Prints "FDS efd=N ..." so the test knows the numbers.
 *
 * Usage: fd_changes WORKDIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_hup;
static char workdir[3800];

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }
static void on_hup(int sig) { (void)sig; got_hup = 1; }

static void die(const char *what)
{
	printf("SETUP ERROR: %s: %s\n", what, strerror(errno));
	_exit(2);
}

int main(int argc, char **argv)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	if (argc != 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(workdir, sizeof workdir, "%s", argv[1]);
	char dir1[4096], dir2[4096];
	snprintf(dir1, sizeof dir1, "%s/one", workdir);
	snprintf(dir2, sizeof dir2, "%s/two", workdir);
	if (mkdir(dir1, 0700) || mkdir(dir2, 0700))
		die("mkdir");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);

	int efd = eventfd(1, EFD_NONBLOCK);
	int tfd_periodic = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int tfd_idle = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	struct itimerspec periodic = { { 1, 0 }, { 600, 0 } }, off = { { 0, 0 }, { 0, 0 } }, later = { { 0, 0 }, { 600, 0 } };
	if (efd < 0 || tfd_periodic < 0 || tfd_idle < 0 || timerfd_settime(tfd_periodic, 0, &periodic, NULL))
		die("eventfd/timerfd");
	int ifd = inotify_init1(IN_NONBLOCK);
	if (ifd < 0 || inotify_add_watch(ifd, dir1, IN_CREATE) < 0)
		die("inotify");
	int p[2];
	if (pipe(p))
		die("pipe");
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGWINCH);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK);
	int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (sfd < 0 || fan < 0)
		die("signalfd/fanotify");
	printf("FDS efd=%d tfd_periodic=%d tfd_idle=%d ifd=%d pipe_r=%d sfd=%d fan=%d\n", efd, tfd_periodic, tfd_idle, ifd, p[0], sfd, fan);
	printf("READY %d\n", getpid());
	while (!got_usr1) {
		if (got_hup) {
			got_hup = 0;
			uint64_t three = 3;
			sigaddset(&mask, SIGUSR2);
			if (write(efd, &three, 8) != 8 || timerfd_settime(tfd_periodic, 0, &off, NULL) ||
			    timerfd_settime(tfd_idle, 0, &later, NULL) || inotify_add_watch(ifd, dir2, IN_DELETE) < 0 ||
			    fcntl(p[0], F_SETFL, O_NONBLOCK) || signalfd(sfd, &mask, 0) != sfd ||
			    fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, dir2))
				printf("FAIL: change: %s\n", strerror(errno));
			else
				printf("CHANGED\n");
		}
		usleep(1000);
	}
	printf("PASS\n");
	return 0;
}
