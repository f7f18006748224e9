/* memfd_ids: memory objects that the fs and mm plugins both meet. fd 3 is a memfd held only as an
 * fd (2 pages); fd 4 is a memfd held as an fd and mapped MAP_SHARED; a MAP_SHARED|MAP_ANONYMOUS
 * page; a 3-page memfd only mapped (its fd closed), with data in pages 0 and 2 and a hole between.
 * Prints READY <pid>; on SIGUSR1 checks every content, that fd 4 and its mapping are one inode
 * (fstat against /proc/self/map_files, and a write through one seen through the other), and prints
 * PASS or FAIL: lines. */
#include "target.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PAGE 4096

static void expect(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want))
		fail("%s holds '%.32s', not '%s'", what, got, want);
}

static int make_memfd(const char *name, off_t size)
{
	int fd = memfd_create(name, 0);
	if (fd < 0 || ftruncate(fd, size))
		die("memfd_create");
	return fd;
}

int main(void)
{
	start(1);
	int fdonly = make_memfd("fd-only", 2 * PAGE);
	int both = make_memfd("fd-and-mapped", PAGE);
	int maponly = make_memfd("mapped-only", 3 * PAGE);
	if (fdonly != 3 || both != 4)
		die("fd numbers");
	if (pwrite(fdonly, "fd-only one", 12, 0) != 12 || pwrite(fdonly, "fd-only two", 12, PAGE) != 12)
		die("pwrite");
	char *bothmap = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, both, 0);
	char *anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *mapped = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, maponly, 0);
	if (bothmap == MAP_FAILED || anon == MAP_FAILED || mapped == MAP_FAILED)
		die("mmap");
	close(maponly);
	strcpy(bothmap, "both");
	strcpy(anon, "anon");
	strcpy(mapped, "mapped first");
	strcpy(mapped + 2 * PAGE, "mapped third");

	ready_and_wait();

	char buf[32] = "";
	if (pread(fdonly, buf, 12, 0) != 12)
		fail("pread fd 3: %s", strerror(errno));
	expect("fd 3 page 0", buf, "fd-only one");
	if (pread(fdonly, buf, 12, PAGE) != 12)
		fail("pread fd 3: %s", strerror(errno));
	expect("fd 3 page 1", buf, "fd-only two");
	expect("the fd-and-mapped memfd's mapping", bothmap, "both");
	expect("the shared anonymous page", anon, "anon");
	expect("the mapped-only memfd's page 0", mapped, "mapped first");
	expect("the mapped-only memfd's page 2", mapped + 2 * PAGE, "mapped third");
	for (int i = 0; i < PAGE; i++)
		if (mapped[PAGE + i]) {
			fail("the mapped-only memfd's hole holds data at %d", i);
			break;
		}

	struct stat fdst, mapst;
	char link[128];
	snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx", (unsigned long)bothmap, (unsigned long)bothmap + PAGE);
	if (fstat(both, &fdst) || stat(link, &mapst))
		fail("stat: %s", strerror(errno));
	else if (fdst.st_dev != mapst.st_dev || fdst.st_ino != mapst.st_ino)
		fail("fd 4 is inode %lu, its mapping inode %lu: two objects", (unsigned long)fdst.st_ino, (unsigned long)mapst.st_ino);
	if (pwrite(both, "written by fd", 14, 0) != 14)
		fail("pwrite fd 4: %s", strerror(errno));
	expect("the mapping after a write through fd 4", bothmap, "written by fd");
	return finish();
}
