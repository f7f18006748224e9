#include "target.h"
/*
 * fs_edge: files whose names are gone while the process still holds them. One case per run:
 *   inotify WORKDIR  an inotify watch on a file removed since (the fd stays open), next to a
 *                    watch on the directory; after restore both still report events.
 *   device WORKDIR   a character device node (1:7, /dev/full's) made with mknod, owned by
 *                    65534:65534 mode 0640, opened and unlinked; after restore the fd is that
 *                    device with that owner and mode, and nothing is left in WORKDIR. A node
 *                    WORKDIR/full-node made beforehand (for a target run as nobody) is used.
 *   sparse WORKDIR   an unlinked 2 GiB file with 8 KiB of data at 1 GiB and at its end; after
 *                    restore the same size, data and holes (few blocks allocated).
 *   inotify-mapped WORKDIR  the same, but only a mapping holds the removed file: amber refuses
 *                    it at dump; the check after SIGUSR1 proves the watch and mapping unharmed.
 *   epoll WORKDIR    an epoll watching an eventfd whose only fd left is in a child (the parent
 *                    closed its own after the fork); after restore the parent's epoll still
 *                    reports it, and once the child drains the eventfd, no longer does.
 * Prints READY, waits for SIGUSR1, checks, prints PASS or FAIL: lines.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define SPARSE_SIZE (2LL << 30)
#define MIDDLE (1LL << 30)
#define CHUNK 4096

static char workdir[3800];

static void path_of(char *out, const char *name) { snprintf(out, 4000, "%s/%s", workdir, name); }

/* Waits up to 2 s for an event of wd with mask bits on ify; name, if given, must match. */
static int wait_event(int ify, int wd, uint32_t mask, const char *name)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (int round = 0; round < 20; round++) {
		struct pollfd p = { .fd = ify, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(ify, buf, sizeof buf);
		for (char *at = buf; n > 0 && at < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)at;
			if (ev->wd == wd && (ev->mask & mask) && (!name || (ev->len && strcmp(ev->name, name) == 0)))
				return 1;
			at += sizeof *ev + ev->len;
		}
	}
	return 0;
}

static int inotify_case(void)
{
	char path[4000];
	path_of(path, "watched");
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || write(fd, "hello", 5) != 5)
		die("watched file");
	int ify = inotify_init1(IN_NONBLOCK);
	int wd_file = inotify_add_watch(ify, path, IN_MODIFY);
	int wd_dir = inotify_add_watch(ify, workdir, IN_CREATE);
	if (ify < 0 || wd_file < 0 || wd_dir < 0)
		die("inotify");
	if (unlink(path))
		die("unlink");
	ready_and_wait();

	struct stat st;
	if (fstat(fd, &st) || st.st_nlink != 0)
		fail("the watched file has %lu links, not 0", (unsigned long)st.st_nlink);
	char got[6] = { 0 };
	if (pread(fd, got, 5, 0) != 5 || strcmp(got, "hello"))
		fail("the watched file reads '%s'", got);
	if (pwrite(fd, "j", 1, 0) != 1)
		fail("write to the watched file: %s", strerror(errno));
	if (!wait_event(ify, wd_file, IN_MODIFY, NULL))
		fail("no IN_MODIFY on watch %d of the removed file", wd_file);
	char created[4000];
	path_of(created, "created");
	int c = open(created, O_CREAT | O_WRONLY, 0600);
	if (c < 0)
		fail("create: %s", strerror(errno));
	close(c);
	unlink(created);
	if (!wait_event(ify, wd_dir, IN_CREATE, "created"))
		fail("no IN_CREATE on watch %d of the directory", wd_dir);
	return finish();
}

static int inotify_mapped_case(void)
{
	char path[4000];
	path_of(path, "mapped");
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || write(fd, "hello", 5) != 5)
		die("mapped file");
	char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int ify = inotify_init1(IN_NONBLOCK);
	int wd = inotify_add_watch(ify, path, IN_MODIFY);
	if (map == MAP_FAILED || ify < 0 || wd < 0)
		die("inotify on a mapping");
	close(fd);
	if (unlink(path))
		die("unlink");
	ready_and_wait();

	if (memcmp(map, "hello", 5))
		fail("the mapping reads '%.5s'", map);
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/map_files/%lx-%lx", (unsigned long)map, (unsigned long)map + 4096);
	int again = open(proc, O_RDWR);
	if (again < 0 || pwrite(again, "j", 1, 0) != 1)
		fail("write through the mapped file: %s", strerror(errno));
	if (!wait_event(ify, wd, IN_MODIFY, NULL))
		fail("no IN_MODIFY on watch %d of the removed, mapped file", wd);
	return finish();
}

static int device_case(void)
{
	char path[4000];
	path_of(path, "full-node");
	/* a node the caller made already (for a target that may not mknod: nobody) is used as it is */
	if (access(path, F_OK) && (mknod(path, S_IFCHR | 0640, makedev(1, 7)) || chown(path, 65534, 65534) || chmod(path, 0640)))
		die("mknod");
	int fd = open(path, O_RDWR);
	if (fd < 0)
		die("open node");
	if (unlink(path))
		die("unlink");
	ready_and_wait();

	struct stat st;
	if (fstat(fd, &st))
		fail("fstat: %s", strerror(errno));
	if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 7))
		fail("fd is mode 0%o rdev %u:%u, not the char device 1:7", st.st_mode, major(st.st_rdev), minor(st.st_rdev));
	if ((st.st_mode & 07777) != 0640 || st.st_uid != 65534 || st.st_gid != 65534)
		fail("node is %u:%u mode 0%o, not 65534:65534 0640", st.st_uid, st.st_gid, st.st_mode & 07777);
	if (st.st_nlink != 0)
		fail("node has %lu links", (unsigned long)st.st_nlink);
	errno = 0;
	if (write(fd, "x", 1) != -1 || errno != ENOSPC)
		fail("write to /dev/full's twin did not fail with ENOSPC (%s)", strerror(errno));
	char buf[4] = { 1, 1, 1, 1 };
	if (read(fd, buf, 4) != 4 || buf[0] || buf[3])
		fail("read from /dev/full's twin gave no zeros");
	DIR *d = opendir(workdir);
	for (struct dirent *e; d && (e = readdir(d));)
		if (strstr(e->d_name, "full-node"))
			fail("left behind in the directory: %s", e->d_name);
	if (d)
		closedir(d);
	return finish();
}

static int sparse_case(void)
{
	char path[4000], data[CHUNK];
	path_of(path, "sparse");
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, SPARSE_SIZE))
		die("sparse file");
	for (int i = 0; i < CHUNK; i++)
		data[i] = (char)(i * 7 + 1);
	if (pwrite(fd, data, CHUNK, MIDDLE) != CHUNK || pwrite(fd, data, CHUNK, SPARSE_SIZE - CHUNK) != CHUNK)
		die("pwrite");
	if (unlink(path))
		die("unlink");
	ready_and_wait();

	struct stat st;
	if (fstat(fd, &st))
		fail("fstat: %s", strerror(errno));
	if (st.st_size != SPARSE_SIZE)
		fail("size %lld, not %lld", (long long)st.st_size, SPARSE_SIZE);
	if (st.st_blocks * 512 > (1 << 20))
		fail("%lld bytes allocated: the holes were filled", (long long)st.st_blocks * 512);
	char got[CHUNK];
	if (pread(fd, got, CHUNK, MIDDLE) != CHUNK || memcmp(got, data, CHUNK))
		fail("data at 1 GiB differs");
	if (pread(fd, got, CHUNK, SPARSE_SIZE - CHUNK) != CHUNK || memcmp(got, data, CHUNK))
		fail("data at the end differs");
	memset(got, 1, CHUNK);
	if (pread(fd, got, CHUNK, 4096) != CHUNK || got[0] || got[CHUNK - 1])
		fail("the hole at 4 KiB is not zeros");
	off_t next = lseek(fd, 0, SEEK_DATA);
	if (next != MIDDLE)
		fail("first data at %lld, not at 1 GiB", (long long)next);
	return finish();
}

#define EPOLL_DATA 0x5eed5eedULL

static volatile sig_atomic_t got_usr2;
static void on_usr2(int sig) { (void)sig; got_usr2 = 1; }

static int epoll_case(void)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EPOLL_DATA };
	if (efd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev))
		die("epoll");
	uint64_t one = 1;
	if (write(efd, &one, 8) != 8)
		die("eventfd write");
	signal(SIGUSR2, on_usr2);
	sigset_t usr2, old;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, &old);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		while (!got_usr2)
			sigsuspend(&old);
		uint64_t v = 0;
		_exit(read(efd, &v, 8) == 8 && v == 1 ? 0 : 3);
	}
	close(efd);
	ready_and_wait();

	struct epoll_event got;
	int n = epoll_wait(ep, &got, 1, 1000);
	if (n != 1 || got.data.u64 != EPOLL_DATA || !(got.events & EPOLLIN))
		fail("epoll_wait gave %d events (data %llx), not the eventfd's", n, n > 0 ? (unsigned long long)got.data.u64 : 0ULL);
	kill(child, SIGUSR2);
	int status = 0;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("the child could not drain the eventfd (status %x)", status);
	if ((n = epoll_wait(ep, &got, 1, 0)) != 0)
		fail("epoll still reports %d events once the child drained the eventfd: not the child's eventfd", n);
	return finish();
}

int main(int argc, char **argv)
{
	start(0);
	if (argc != 3)
		die("usage: fs_edge inotify|inotify-mapped|device|sparse|epoll WORKDIR");
	snprintf(workdir, sizeof workdir, "%s", argv[2]);
	if (!strcmp(argv[1], "inotify"))
		return inotify_case();
	if (!strcmp(argv[1], "inotify-mapped"))
		return inotify_mapped_case();
	if (!strcmp(argv[1], "device"))
		return device_case();
	if (!strcmp(argv[1], "sparse"))
		return sparse_case();
	if (!strcmp(argv[1], "epoll"))
		return epoll_case();
	die("unknown case");
}
