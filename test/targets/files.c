/*
 * files: holds one of each kind of file the fs plugin restores, prints
 * "READY <pid>", waits for SIGUSR1, then checks every one of them and prints
 * PASS or FAIL: <what> lines, exiting 0 or 1.
 *
 * Usage: files WORKDIR
 */
#define _GNU_SOURCE
#include "target.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIPE_BYTES (10 * 1024)
#define PIPE_SIZE (128 * 1024)
#define FIFO_TEXT "fifo-data-1234"
#define GHOST_TEXT "this file has no name any more"
#define SHARED_TEXT "abcdefghij"
#define MEMFD_BYTES 6000
#define MEMFD_POS 100
#define MEMFD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
#define EPOLL_PIPE_DATA 0x1111222233334444ULL
#define EPOLL_EFD_DATA 0x5555ULL
#define LOCK_START 10
#define LOCK_LEN 20

static char workdir[3800];
static int pipe_r, pipe_w, fifo_r, fifo_w, ghost, shared1, shared2, cloexec_fd, efd, tfd_slow, tfd_fast, sfd, epfd,
	ifd, mfd, flock_fd, posix_fd, null_fd, dir_fd, opath_fd, renamed_fd;


static const char *in_workdir(const char *name)
{
	static char path[2][4096];
	static int which;
	which ^= 1;
	snprintf(path[which], sizeof path[which], "%s/%s", workdir, name);
	return path[which];
}

static unsigned char pipe_byte(int i) { return (unsigned char)(i * 7 + 3); }
static unsigned char memfd_byte(int i) { return (unsigned char)(i % 251); }

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags, 0644);
	if (fd < 0)
		die(path);
	return fd;
}

static void write_file(const char *path, const char *text)
{
	int fd = open_or_die(path, O_WRONLY | O_CREAT | O_TRUNC);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die("write");
	close(fd);
}

static void setup(void)
{
	int p[2];
	unsigned char buf[PIPE_BYTES];
	if (pipe(p))
		die("pipe");
	pipe_r = p[0], pipe_w = p[1];
	if (fcntl(pipe_w, F_SETPIPE_SZ, PIPE_SIZE) < 0)
		die("F_SETPIPE_SZ");
	for (int i = 0; i < PIPE_BYTES; i++)
		buf[i] = pipe_byte(i);
	/* several writes: several pipe buffers */
	for (int off = 0; off < PIPE_BYTES; off += 1000) {
		int n = PIPE_BYTES - off < 1000 ? PIPE_BYTES - off : 1000;
		if (write(pipe_w, buf + off, n) != n)
			die("write pipe");
	}

	if (mkfifo(in_workdir("fifo"), 0600))
		die("mkfifo");
	fifo_r = open_or_die(in_workdir("fifo"), O_RDONLY | O_NONBLOCK);
	fifo_w = open_or_die(in_workdir("fifo"), O_WRONLY);
	if (write(fifo_w, FIFO_TEXT, strlen(FIFO_TEXT)) != (ssize_t)strlen(FIFO_TEXT))
		die("write fifo");

	ghost = open_or_die(in_workdir("ghost"), O_RDWR | O_CREAT | O_TRUNC);
	if (write(ghost, GHOST_TEXT, strlen(GHOST_TEXT)) != (ssize_t)strlen(GHOST_TEXT))
		die("write ghost");
	lseek(ghost, 5, SEEK_SET);
	unlink(in_workdir("ghost"));

	write_file(in_workdir("shared"), SHARED_TEXT);
	shared1 = open_or_die(in_workdir("shared"), O_RDONLY);
	shared2 = dup(shared1);
	char two[2];
	if (read(shared1, two, 2) != 2)
		die("read shared");

	cloexec_fd = open_or_die("/dev/null", O_RDONLY | O_CLOEXEC);

	efd = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK);
	if (efd < 0)
		die("eventfd");

	struct itimerspec slow = { { 1, 0 }, { 600, 0 } }, fast = { { 0, 10000000 }, { 0, 10000000 } };
	tfd_slow = timerfd_create(CLOCK_MONOTONIC, 0);
	tfd_fast = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (tfd_slow < 0 || tfd_fast < 0 || timerfd_settime(tfd_slow, 0, &slow, NULL) || timerfd_settime(tfd_fast, 0, &fast, NULL))
		die("timerfd");

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK);
	if (sfd < 0)
		die("signalfd");

	epfd = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EPOLL_PIPE_DATA };
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, pipe_r, &ev))
		die("epoll pipe");
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = EPOLL_EFD_DATA;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
		die("epoll eventfd");

	if (mkdir(in_workdir("watched"), 0700))
		die("mkdir watched");
	ifd = inotify_init1(IN_NONBLOCK);
	if (ifd < 0 || inotify_add_watch(ifd, in_workdir("watched"), IN_CREATE) != 1)
		die("inotify");

	mfd = memfd_create("amber-test", MFD_ALLOW_SEALING);
	unsigned char mbuf[MEMFD_BYTES];
	for (int i = 0; i < MEMFD_BYTES; i++)
		mbuf[i] = memfd_byte(i);
	if (mfd < 0 || write(mfd, mbuf, MEMFD_BYTES) != MEMFD_BYTES || fcntl(mfd, F_ADD_SEALS, MEMFD_SEALS))
		die("memfd");
	lseek(mfd, MEMFD_POS, SEEK_SET);

	flock_fd = open_or_die(in_workdir("flocked"), O_RDWR | O_CREAT);
	if (flock(flock_fd, LOCK_EX | LOCK_NB))
		die("flock");
	posix_fd = open_or_die(in_workdir("posix-locked"), O_RDWR | O_CREAT);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_START, .l_len = LOCK_LEN };
	if (fcntl(posix_fd, F_SETLK, &fl))
		die("F_SETLK");

	null_fd = open_or_die("/dev/null", O_WRONLY);
	dir_fd = open_or_die(workdir, O_RDONLY | O_DIRECTORY);
	opath_fd = open_or_die(in_workdir("shared"), O_PATH);
	write_file(in_workdir("before-rename"), "renamed");
	renamed_fd = open_or_die(in_workdir("before-rename"), O_RDONLY);
	if (rename(in_workdir("before-rename"), in_workdir("after-rename")))
		die("rename");
}

static void check_link(int fd, const char *want, const char *what)
{
	char path[64], link[4200];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	link[n < 0 ? 0 : n] = 0;
	if (strcmp(link, want))
		fail("%s: fd %d is %s, not %s", what, fd, link, want);
}

static void check_epoll(void)
{
	struct epoll_event evs[4];
	int n = epoll_wait(epfd, evs, 4, 1000);
	int seen_pipe = 0, seen_efd = 0;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == EPOLL_PIPE_DATA && (evs[i].events & EPOLLIN))
			seen_pipe = 1;
		else if (evs[i].data.u64 == EPOLL_EFD_DATA && (evs[i].events & EPOLLIN))
			seen_efd = 1;
		else
			fail("epoll: unexpected event 0x%x data 0x%llx", evs[i].events, (unsigned long long)evs[i].data.u64);
	}
	if (!seen_pipe || !seen_efd)
		fail("epoll: %d events; pipe ready %d, eventfd ready %d", n, seen_pipe, seen_efd);
}

static void check_pipes(void)
{
	unsigned char buf[PIPE_BYTES + 16];
	if (fcntl(pipe_r, F_GETPIPE_SZ) != PIPE_SIZE)
		fail("pipe size %d, not %d", fcntl(pipe_r, F_GETPIPE_SZ), PIPE_SIZE);
	fcntl(pipe_r, F_SETFL, O_NONBLOCK);
	ssize_t n = read(pipe_r, buf, sizeof buf);
	if (n != PIPE_BYTES)
		fail("pipe holds %zd bytes, not %d", n, PIPE_BYTES);
	for (int i = 0; i < n && i < PIPE_BYTES; i++)
		if (buf[i] != pipe_byte(i)) {
			fail("pipe byte %d is %u, not %u", i, buf[i], pipe_byte(i));
			break;
		}
	if (write(pipe_w, "x", 1) != 1 || read(pipe_r, buf, 1) != 1 || buf[0] != 'x')
		fail("pipe ends are not connected");

	char text[64] = "";
	n = read(fifo_r, text, sizeof text - 1);
	if (n != (ssize_t)strlen(FIFO_TEXT) || memcmp(text, FIFO_TEXT, n))
		fail("FIFO holds %zd bytes '%.*s', not '%s'", n, (int)(n > 0 ? n : 0), text, FIFO_TEXT);
	if (write(fifo_w, "y", 1) != 1 || read(fifo_r, text, 1) != 1 || text[0] != 'y')
		fail("FIFO ends are not connected");
	check_link(fifo_r, in_workdir("fifo"), "FIFO");
}

static void check_files(void)
{
	char buf[128] = "";
	char want[4200];
	snprintf(want, sizeof want, "%s (deleted)", in_workdir("ghost"));
	check_link(ghost, want, "unlinked file");
	if (lseek(ghost, 0, SEEK_CUR) != 5)
		fail("unlinked file offset %ld, not 5", (long)lseek(ghost, 0, SEEK_CUR));
	ssize_t n = pread(ghost, buf, sizeof buf - 1, 0);
	if (n != (ssize_t)strlen(GHOST_TEXT) || memcmp(buf, GHOST_TEXT, n))
		fail("unlinked file holds '%.*s'", (int)(n > 0 ? n : 0), buf);

	if (read(shared2, buf, 1) != 1 || buf[0] != 'c')
		fail("dup'ed fd: read '%c', not 'c' (offset not shared)", buf[0]);
	if (lseek(shared1, 0, SEEK_CUR) != 3)
		fail("dup'ed fds do not share their offset (%ld)", (long)lseek(shared1, 0, SEEK_CUR));
	if (!(fcntl(cloexec_fd, F_GETFD) & FD_CLOEXEC))
		fail("close-on-exec lost");
	if (fcntl(shared2, F_GETFD) & FD_CLOEXEC)
		fail("close-on-exec gained");
	check_link(null_fd, "/dev/null", "/dev/null");
	check_link(dir_fd, workdir, "directory");
	check_link(opath_fd, in_workdir("shared"), "O_PATH");
	if (!(fcntl(opath_fd, F_GETFL) & O_PATH))
		fail("O_PATH flag lost");
	check_link(renamed_fd, in_workdir("after-rename"), "renamed file");
	n = read(renamed_fd, buf, sizeof buf);
	if (n != 7 || memcmp(buf, "renamed", 7))
		fail("renamed file content");
}

static void check_anon(void)
{
	uint64_t v;
	for (int i = 0; i < 5; i++)
		if (read(efd, &v, 8) != 8 || v != 1)
			fail("eventfd read %d: semaphore mode or count lost", i);
	if (read(efd, &v, 8) != -1 || errno != EAGAIN)
		fail("eventfd count was above 5");

	struct itimerspec cur;
	timerfd_gettime(tfd_slow, &cur);
	if (cur.it_interval.tv_sec != 1 || cur.it_interval.tv_nsec != 0)
		fail("timerfd interval %ld.%09ld, not 1 s", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
	if (cur.it_value.tv_sec <= 0 || cur.it_value.tv_sec > 600)
		fail("timerfd remaining %ld s is not in (0, 600]", (long)cur.it_value.tv_sec);
	usleep(50000);
	if (read(tfd_fast, &v, 8) != 8 || v < 1)
		fail("armed timerfd did not expire");

	struct signalfd_siginfo si;
	raise(SIGUSR2);
	if (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR2)
		fail("signalfd did not deliver SIGUSR2");
	raise(SIGWINCH);
	if (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGWINCH)
		fail("signalfd did not deliver SIGWINCH");

	int fd = open(in_workdir("watched/after-restore"), O_CREAT | O_WRONLY, 0600);
	close(fd);
	char buf[4096] __attribute__((aligned(8)));
	int seen = 0;
	ssize_t n = read(ifd, buf, sizeof buf);
	for (char *p = buf; n > 0 && p < buf + n;) {
		struct inotify_event *e = (struct inotify_event *)p;
		if (e->wd == 1 && (e->mask & IN_CREATE) && !strcmp(e->name, "after-restore"))
			seen = 1;
		p += sizeof *e + e->len;
	}
	if (!seen)
		fail("inotify: no IN_CREATE for a file created after restore");

	check_link(mfd, "/memfd:amber-test (deleted)", "memfd");
	if (fcntl(mfd, F_GET_SEALS) != MEMFD_SEALS)
		fail("memfd seals 0x%x, not 0x%x", fcntl(mfd, F_GET_SEALS), MEMFD_SEALS);
	if (lseek(mfd, 0, SEEK_CUR) != MEMFD_POS)
		fail("memfd offset %ld", (long)lseek(mfd, 0, SEEK_CUR));
	unsigned char mbuf[MEMFD_BYTES + 10];
	n = pread(mfd, mbuf, sizeof mbuf, 0);
	if (n != MEMFD_BYTES)
		fail("memfd holds %zd bytes", n);
	for (int i = 0; i < n; i++)
		if (mbuf[i] != memfd_byte(i)) {
			fail("memfd byte %d", i);
			break;
		}
	if (write(mfd, "z", 1) != -1)
		fail("memfd F_SEAL_WRITE not enforced");
}

/* A child forked now must find both locks taken by its parent. */
static void check_locks(void)
{
	pid_t parent = getpid();
	pid_t child = fork();
	if (child == 0) {
		int bad = 0;
		int fd = open(in_workdir("flocked"), O_RDWR);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			bad |= 1;
		int pfd = open(in_workdir("posix-locked"), O_RDWR);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_START, .l_len = LOCK_LEN };
		if (fcntl(pfd, F_GETLK, &fl) || fl.l_type != F_WRLCK || fl.l_pid != parent)
			bad |= 2;
		_exit(bad);
	}
	int st;
	if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st))
		fail("lock checker child did not run");
	else {
		if (WEXITSTATUS(st) & 1)
			fail("flock is not held any more");
		if (WEXITSTATUS(st) & 2)
			fail("POSIX lock is not held any more");
	}
}

int main(int argc, char **argv)
{
	start(0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
		return 2;
	}
	snprintf(workdir, sizeof workdir, "%s", argv[1]);
	setup();
	pid_t pid = getpid();
	printf("READY %d\n", pid);
	while (!got_usr1)
		usleep(1000);
	if (getpid() != pid)
		fail("pid changed");
	check_epoll();
	check_pipes();
	check_files();
	check_anon();
	check_locks();
	return finish();
}
