/*
 * files_more: pidfds (of itself, of its child, of init: outside the dumped tree), a fanotify
 * group with an inode mark and a mount mark, an OFD lock, fd owners and signals (F_SETOWN_EX,
 * F_SETSIG, O_ASYNC) on a pipe and a file, an epoll whose target fd was closed while a dup stays
 * open, and one unlinked file opened twice. Prints "READY <pid>", waits for SIGUSR1, checks every
 * one of them, prints PASS or FAIL: <what> lines and exits 0 or 1. The child waits for SIGTERM.
 *
 * Usage: files_more WORKDIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define GHOST_TEXT "two opens, one inode"
#define EPOLL_DATA 0xabcdef12ULL
#define OWN_SIG (SIGRTMIN + 3)
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static volatile sig_atomic_t got_usr1;
static char workdir[3800];
static int failures;
static pid_t child, parent;
static int pidfd_self, pidfd_child, pidfd_parent, fan, ofd_fd, own_pipe_r, own_pipe_w, own_file, epfd, ep_dup, ep_reuse, ghost_a,
	ghost_b;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	failures++;
}

static void die(const char *what)
{
	printf("SETUP ERROR: %s: %s\n", what, strerror(errno));
	if (child > 0)
		kill(child, SIGKILL);
	exit(2);
}

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }
static void on_own(int sig) { (void)sig; }

static const char *in_workdir(const char *name)
{
	static char path[2][4096];
	static int which;
	which ^= 1;
	snprintf(path[which], sizeof path[which], "%s/%s", workdir, name);
	return path[which];
}

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags, 0644);
	if (fd < 0)
		die(path);
	return fd;
}

/* The "Pid:" line of an fd's fdinfo (a pidfd's process). */
static long fdinfo_pid(int fd)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	long pid = -2;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Pid: %ld", &pid) == 1)
			break;
	if (f)
		fclose(f);
	return pid;
}

static void setup(void)
{
	/* not getppid(): started through setsid -f, the first parent exits right away */
	parent = 1;
	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	if (child < 0)
		die("fork");
	pidfd_self = syscall(SYS_pidfd_open, getpid(), 0);
	pidfd_child = syscall(SYS_pidfd_open, child, PIDFD_NONBLOCK);
	pidfd_parent = syscall(SYS_pidfd_open, parent, 0);
	if (pidfd_self < 0 || pidfd_child < 0 || pidfd_parent < 0)
		die("pidfd_open");

	if (mkdir(in_workdir("fan"), 0700))
		die("mkdir fan");
	close(open_or_die(in_workdir("fan/watched"), O_CREAT | O_WRONLY));
	fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_MODIFY, AT_FDCWD, in_workdir("fan/watched")))
		die("fanotify inode mark");
	if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, "/proc/self/exe"))
		die("fanotify mount mark");

	ofd_fd = open_or_die(in_workdir("ofd-locked"), O_RDWR | O_CREAT);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	if (fcntl(ofd_fd, F_OFD_SETLK, &fl))
		die("F_OFD_SETLK");

	int p[2];
	if (pipe(p))
		die("pipe");
	own_pipe_r = p[0], own_pipe_w = p[1];
	struct f_owner_ex ex = { F_OWNER_PID, getpid() };
	signal(OWN_SIG, on_own);
	if (fcntl(own_pipe_r, F_SETOWN_EX, &ex) || fcntl(own_pipe_r, F_SETSIG, OWN_SIG) ||
	    fcntl(own_pipe_r, F_SETFL, O_ASYNC | O_NONBLOCK))
		die("pipe owner");
	own_file = open_or_die(in_workdir("owned"), O_RDWR | O_CREAT);
	ex.type = F_OWNER_PGRP;
	ex.pid = getpgrp();
	if (fcntl(own_file, F_SETOWN_EX, &ex) || fcntl(own_file, F_SETSIG, SIGURG))
		die("file owner");

	/* epoll watches an eventfd added as fd N; N is then closed (a dup keeps the eventfd) and
	 * reused for an unrelated file */
	epfd = epoll_create1(0);
	int efd = eventfd(1, EFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EPOLL_DATA };
	if (epfd < 0 || efd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
		die("epoll");
	ep_dup = dup(efd);
	close(efd);
	ep_reuse = open_or_die("/dev/null", O_RDONLY);
	if (ep_reuse != efd)
		die("fd number of the closed epoll target not reused");

	ghost_a = open_or_die(in_workdir("ghost"), O_RDWR | O_CREAT | O_TRUNC);
	if (write(ghost_a, GHOST_TEXT, strlen(GHOST_TEXT)) != (ssize_t)strlen(GHOST_TEXT))
		die("write ghost");
	ghost_b = open_or_die(in_workdir("ghost"), O_RDONLY);
	lseek(ghost_b, 4, SEEK_SET);
	unlink(in_workdir("ghost"));
}

static void check_pidfds(void)
{
	if (fdinfo_pid(pidfd_self) != getpid())
		fail("pidfd of itself refers to %ld", fdinfo_pid(pidfd_self));
	if (fdinfo_pid(pidfd_child) != child)
		fail("pidfd of the child refers to %ld, not %d", fdinfo_pid(pidfd_child), child);
	if (!(fcntl(pidfd_child, F_GETFL) & O_NONBLOCK))
		fail("PIDFD_NONBLOCK lost");
	if (fdinfo_pid(pidfd_parent) != parent)
		fail("pidfd of init refers to %ld, not %d", fdinfo_pid(pidfd_parent), parent);
	if (syscall(SYS_pidfd_send_signal, pidfd_child, SIGTERM, NULL, 0))
		fail("pidfd_send_signal to the child: %s", strerror(errno));
	siginfo_t si;
	memset(&si, 0, sizeof si);
	int r, tries = 0;
	/* the pidfd is PIDFD_NONBLOCK: waitid says EAGAIN until the child has exited */
	while ((r = waitid(P_PIDFD, pidfd_child, &si, WEXITED)) && errno == EAGAIN && tries++ < 2000)
		usleep(1000);
	if (r || si.si_pid != child || si.si_status != SIGTERM)
		fail("waitid(P_PIDFD) on the child: %s (pid %d status %d)", strerror(errno), si.si_pid, si.si_status);
}

/* Reads every queued event; returns the union of their masks. */
static unsigned long long drain_fanotify(void)
{
	char buf[4096] __attribute__((aligned(8)));
	unsigned long long seen = 0;
	ssize_t n;
	while ((n = read(fan, buf, sizeof buf)) > 0) {
		for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			seen |= m->mask;
			if (m->fd >= 0)
				close(m->fd);
		}
	}
	return seen;
}

static void check_fanotify(void)
{
	/*
	 * The mount mark sees every open on the machine's root mount: on a busy machine the queue
	 * (16384 events) overflows between restore and this check and drops the inode mark's events.
	 * What was queued before is not the check's business; it starts from an empty queue.
	 */
	drain_fanotify();
	int fd = open(in_workdir("fan/watched"), O_WRONLY);
	if (fd < 0 || write(fd, "x", 1) != 1)
		fail("write watched file");
	close(fd);
	unsigned long long seen = drain_fanotify();
	if ((seen & (FAN_MODIFY | FAN_CLOSE_WRITE)) != (FAN_MODIFY | FAN_CLOSE_WRITE))
		fail("fanotify inode mark: events 0x%llx", seen);
	if (!(seen & FAN_OPEN))
		fail("fanotify mount mark: no FAN_OPEN (events 0x%llx)", seen);
	if (!(fcntl(fan, F_GETFL) & O_NONBLOCK))
		fail("fanotify FAN_NONBLOCK lost");
}

static void check_ofd_lock(void)
{
	int other = open(in_workdir("ofd-locked"), O_RDWR);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1 };
	if (fcntl(other, F_OFD_GETLK, &fl) || fl.l_type != F_WRLCK || fl.l_start != 0 || fl.l_len != 10)
		fail("OFD lock not held (type %d start %ld len %ld)", fl.l_type, (long)fl.l_start, (long)fl.l_len);
	close(other);
	fl.l_type = F_WRLCK;
	fl.l_pid = 0;
	if (fcntl(ofd_fd, F_OFD_SETLK, &fl))
		fail("OFD lock is not held by the same description: %s", strerror(errno));
}

static void check_owners(void)
{
	struct f_owner_ex ex;
	if (fcntl(own_pipe_r, F_GETOWN_EX, &ex) || ex.type != F_OWNER_PID || ex.pid != getpid())
		fail("pipe owner %d/%d", ex.type, ex.pid);
	if (fcntl(own_pipe_r, F_GETSIG) != OWN_SIG)
		fail("pipe F_GETSIG %d, not %d", fcntl(own_pipe_r, F_GETSIG), OWN_SIG);
	if ((fcntl(own_pipe_r, F_GETFL) & (O_ASYNC | O_NONBLOCK)) != (O_ASYNC | O_NONBLOCK))
		fail("pipe O_ASYNC|O_NONBLOCK lost (flags 0%o)", fcntl(own_pipe_r, F_GETFL));
	if (fcntl(own_file, F_GETOWN_EX, &ex) || ex.type != F_OWNER_PGRP || ex.pid != getpgrp())
		fail("file owner %d/%d", ex.type, ex.pid);
	if (fcntl(own_file, F_GETSIG) != SIGURG)
		fail("file F_GETSIG %d", fcntl(own_file, F_GETSIG));
	/* O_ASYNC + owner + signal: data on the pipe queues OWN_SIG for us */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, OWN_SIG);
	sigprocmask(SIG_BLOCK, &set, &old);
	if (write(own_pipe_w, "s", 1) != 1)
		fail("write owned pipe");
	struct timespec ts = { 2, 0 };
	if (sigtimedwait(&set, NULL, &ts) != OWN_SIG)
		fail("no signal %d from the owned pipe", OWN_SIG);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void check_epoll(void)
{
	struct epoll_event ev;
	if (epoll_wait(epfd, &ev, 1, 1000) != 1 || ev.data.u64 != EPOLL_DATA)
		fail("epoll: target whose fd was closed is not watched");
	uint64_t v;
	if (read(ep_dup, &v, 8) != 8 || v != 1)
		fail("epoll target (the dup) lost its count");
	char path[64], link[256];
	snprintf(path, sizeof path, "/proc/self/fd/%d", ep_reuse);
	ssize_t n = readlink(path, link, sizeof link - 1);
	link[n < 0 ? 0 : n] = 0;
	if (strcmp(link, "/dev/null"))
		fail("fd %d that reused the epoll target's number is %s", ep_reuse, link);
}

static void check_ghost(void)
{
	struct stat a, b;
	if (fstat(ghost_a, &a) || fstat(ghost_b, &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		fail("two opens of one unlinked file are two inodes now");
	if (lseek(ghost_b, 0, SEEK_CUR) != 4 || lseek(ghost_a, 0, SEEK_CUR) != (off_t)strlen(GHOST_TEXT))
		fail("unlinked file offsets %ld/%ld", (long)lseek(ghost_a, 0, SEEK_CUR), (long)lseek(ghost_b, 0, SEEK_CUR));
	if (write(ghost_a, "!", 1) != 1)
		fail("write unlinked file");
	char buf[64] = "";
	ssize_t n = pread(ghost_b, buf, sizeof buf - 1, 0);
	if (n != (ssize_t)strlen(GHOST_TEXT) + 1 || memcmp(buf, GHOST_TEXT "!", n))
		fail("unlinked file seen through the other open: '%.*s'", (int)(n > 0 ? n : 0), buf);
	if ((fcntl(ghost_b, F_GETFL) & O_ACCMODE) != O_RDONLY)
		fail("second open of the unlinked file is not read-only");
}

int main(int argc, char **argv)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(workdir, sizeof workdir, "%s", argv[1]);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	setup();
	pid_t pid = getpid();
	printf("READY %d\n", pid);
	while (!got_usr1)
		usleep(1000);
	check_pidfds();
	check_fanotify();
	check_ofd_lock();
	check_owners();
	check_epoll();
	check_ghost();
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
