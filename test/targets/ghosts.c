/* ghosts WORKDIR: two files opened, written and unlinked, so a dump must carry their contents:
 * a small one (100 bytes, which CRIU keeps whole) and a sparse one of 64 KiB with data in its
 * first and eleventh pages and a hole between (which CRIU keeps as chunks). Prints READY <pid>;
 * on SIGUSR1 checks each fd still reads what was written, the sizes, that the hole reads as zeros
 * and that both files are still unlinked. PASS or FAIL: lines. */
#include "target.h"
#include <fcntl.h>
#include <sys/stat.h>

#define BIG 65536
#define PAGE 4096

static int make(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("open");
	if (unlink(path))
		die("unlink");
	return fd;
}

static void pattern(char *buf, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(seed + i * 7);
}

static void check(int fd, const char *what, off_t size, off_t at, size_t n, int seed)
{
	struct stat st;
	if (fstat(fd, &st))
		die("fstat");
	if (st.st_size != size)
		fail("%s: size %lld, not %lld", what, (long long)st.st_size, (long long)size);
	if (st.st_nlink != 0)
		fail("%s: has %lu links, not 0", what, (unsigned long)st.st_nlink);
	char want[PAGE], got[PAGE];
	pattern(want, n, seed);
	if (pread(fd, got, n, at) != (ssize_t)n || memcmp(want, got, n))
		fail("%s: the data at %lld differs", what, (long long)at);
}

int main(int argc, char **argv)
{
	start(0);
	if (argc < 2)
		die("usage: ghosts WORKDIR");
	char buf[PAGE];
	int small = make(argv[1], "small");
	pattern(buf, 100, 1);
	if (write(small, buf, 100) != 100)
		die("write small");
	int big = make(argv[1], "big");
	pattern(buf, PAGE, 2);
	if (pwrite(big, buf, PAGE, 0) != PAGE)
		die("pwrite big");
	pattern(buf, PAGE, 3);
	if (pwrite(big, buf, PAGE, 10 * PAGE) != PAGE)
		die("pwrite big");
	if (ftruncate(big, BIG))
		die("ftruncate");
	ready_and_wait();
	check(small, "small", 100, 0, 100, 1);
	check(big, "big", BIG, 0, PAGE, 2);
	check(big, "big", BIG, 10 * PAGE, PAGE, 3);
	char zero[PAGE] = { 0 }, got[PAGE];
	if (pread(big, got, PAGE, 5 * PAGE) != PAGE || memcmp(zero, got, PAGE))
		fail("big: the hole does not read as zeros");
	if (pread(big, got, PAGE, BIG - PAGE) != PAGE || memcmp(zero, got, PAGE))
		fail("big: its tail does not read as zeros");
	return finish();
}
