#include "target.h"
/*
 * dump_unseen: watches everything it holds and reports whether anyone touched it. In WORKDIR/w
 * (its cwd) it holds a file open, a file mapped shared, a file mapped private (one page written),
 * a file opened and then unlinked, one mapped shared and held open and then unlinked, and the
 * writing end of an empty FIFO; fanotify inode marks (open, open-exec, access, modify, close, on
 * the directory also for its children) and inotify watches (open, access, modify, attrib, close)
 * sit on each of them, on the directory and on its own executable. Events from
 * the setup are drained before READY. It also holds a sparse memfd (amber cannot dump a mark on
 * one), whose holes the dump must not fill. After SIGUSR1 it prints one "EVENTS what fanotify=0x..
 * inotify=0x.." line per object that saw any, then PASS, or FAIL if anything was seen.
 *
 * WORKDIR/w may be there already (a mount of the caller's, so that the watched directory is the
 * root of its mount).
 *
 * Usage: dump_unseen WORKDIR
 */
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define FAN_WATCH (FAN_OPEN | FAN_OPEN_EXEC | FAN_ACCESS | FAN_MODIFY | FAN_CLOSE)
#define IN_WATCH (IN_OPEN | IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE)

enum { HELD, SHARED_MAP, PRIVATE_MAP, GHOST, GHOST_MAP, FIFO, CWD, EXE, OBJECTS };
static const char *names[OBJECTS] = { "held", "shared-map", "private-map", "ghost", "ghost-map", "fifo", "cwd", "exe" };
static dev_t devs[OBJECTS];
static ino_t inos[OBJECTS];
static int wds[OBJECTS];
static unsigned long long fan_seen[OBJECTS];
static unsigned int ino_seen[OBJECTS];
static int fan, ify, held_fd, ghost_fd, memfd, fifo_r, fifo_w;
static char *shared_map, *private_map, *ghost_map;
static int ghost_map_fd;

static int open_file(const char *name, const char *text)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 8192) || pwrite(fd, text, strlen(text), 0) != (ssize_t)strlen(text))
		die(name);
	return fd;
}

static void watch(int what, const char *path, unsigned int fan_extra)
{
	struct stat st;
	if (stat(path, &st))
		die(path);
	devs[what] = st.st_dev;
	inos[what] = st.st_ino;
	if (fanotify_mark(fan, FAN_MARK_ADD, FAN_WATCH | fan_extra, AT_FDCWD, path))
		die("fanotify_mark");
	if ((wds[what] = inotify_add_watch(ify, path, IN_WATCH)) < 0)
		die("inotify_add_watch");
}

static void read_events(void)
{
	char buf[8192] __attribute__((aligned(8)));
	ssize_t n;
	while ((n = read(fan, buf, sizeof buf)) > 0) {
		for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			struct stat st;
			/* an overflow, or a child of the directory we hold nothing else of: the directory's */
			int what = CWD;
			if (m->fd >= 0 && !fstat(m->fd, &st))
				for (int i = 0; i < OBJECTS; i++)
					if (st.st_dev == devs[i] && st.st_ino == inos[i])
						what = i;
			fan_seen[what] |= m->mask;
			if (m->fd >= 0)
				close(m->fd);
		}
	}
	while ((n = read(ify, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (void *)p;
			for (int i = 0; i < OBJECTS; i++)
				if (wds[i] == e->wd)
					ino_seen[i] |= e->mask;
			p += sizeof *e + e->len;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: dump_unseen WORKDIR");
	start(1);
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/w", argv[1]);
	if ((mkdir(dir, 0700) && errno != EEXIST) || chdir(dir))
		die(dir);
	held_fd = open_file("held", "held open");
	int fd = open_file("shared-map", "mapped shared");
	shared_map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	fd = open_file("private-map", "mapped private");
	private_map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (shared_map == MAP_FAILED || private_map == MAP_FAILED)
		die("mmap");
	memcpy(private_map + 4096, "private copy", 13);
	ghost_fd = open_file("ghost", "unlinked while open");
	ghost_map_fd = open_file("ghost-map", "unlinked while mapped shared");
	ghost_map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, ghost_map_fd, 0);
	if (ghost_map == MAP_FAILED)
		die("mmap ghost-map");
	/* only the writing end stays: amber has no description of its own to read it through */
	if (mkfifo("fifo", 0600) || (fifo_r = open("fifo", O_RDONLY | O_NONBLOCK)) < 0 || (fifo_w = open("fifo", O_WRONLY)) < 0 ||
	    close(fifo_r))
		die("fifo");
	memfd = memfd_create("unseen", 0);
	if (memfd < 0 || ftruncate(memfd, 3 << 20) || pwrite(memfd, "memfd data", 10, 1 << 20) != 10)
		die("memfd");

	fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	ify = inotify_init1(IN_NONBLOCK);
	if (fan < 0 || ify < 0)
		die("fanotify_init / inotify_init1");
	watch(HELD, "held", 0);
	watch(SHARED_MAP, "shared-map", 0);
	watch(PRIVATE_MAP, "private-map", 0);
	watch(GHOST, "ghost", 0);
	watch(GHOST_MAP, "ghost-map", 0);
	watch(FIFO, "fifo", 0);
	watch(CWD, ".", FAN_EVENT_ON_CHILD | FAN_ONDIR);
	watch(EXE, "/proc/self/exe", 0);
	if (unlink("ghost") || unlink("ghost-map"))
		die("unlink ghost");
	read_events();
	memset(fan_seen, 0, sizeof fan_seen);
	memset(ino_seen, 0, sizeof ino_seen);

	ready_and_wait();

	read_events();
	for (int i = 0; i < OBJECTS; i++) {
		if (fan_seen[i] || ino_seen[i]) {
			printf("EVENTS %s fanotify=0x%llx inotify=0x%x\n", names[i], fan_seen[i], ino_seen[i]);
			fail("%s was touched while watched", names[i]);
		}
	}
	if (strcmp(ghost_map, "unlinked while mapped shared") || strcmp(shared_map, "mapped shared") || strcmp(private_map + 4096, "private copy"))
		fail("mappings changed");
	struct stat st;
	if (fstat(memfd, &st) || st.st_blocks > 64)
		fail("the memfd's holes were filled: %lld blocks", (long long)st.st_blocks);
	return finish();
}
