/*
 * mem_shared WORKDIR: shared anonymous memory (mapped twice, the second time through
 * /proc/self/map_files), a sealed memfd, a MAP_SHARED file, and files deleted while mapped
 * (one shared, one private with a modified page). READY, SIGUSR1, then checks: PASS / FAIL.
 */
#include "mem_common.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define ANON_PAGES 16
#define MEMFD_SIZE (3 * PAGE + 100)

static unsigned char pattern(int seed, size_t i) { return (unsigned char)(seed * 31 + i * 7 + (i >> 12)); }

static void fill(unsigned char *p, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(seed, i);
}

static void check(const unsigned char *p, size_t n, int seed, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(seed, i)) {
			fail("%s: byte %zu is %u, expected %u", what, i, p[i], pattern(seed, i));
			return;
		}
}

static int make_file(const char *dir, const char *name, size_t size, int seed, char *path)
{
	sprintf(path, "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		die(path);
	unsigned char *buf = malloc(size);
	fill(buf, size, seed);
	if (write(fd, buf, size) != (ssize_t)size)
		die("write");
	free(buf);
	return fd;
}

static void check_maps_name(const void *addr, const char *suffix)
{
	char line[512];
	if (!vma_line(addr, "path", line, sizeof line)) {
		fail("no mapping at %p", addr);
		return;
	}
	line[strcspn(line, "\n")] = 0;
	size_t l = strlen(line), s = strlen(suffix);
	if (l < s || strcmp(line + l - s, suffix))
		fail("mapping at %p is '%s', expected it to end with '%s'", addr, line, suffix);
}

int main(int argc, char **argv)
{
	start(0);
	if (argc != 2)
		return 2;
	const char *dir = argv[1];
	char path[4096], ghost_shared[4096], ghost_private[4096];

	/* shared anonymous: pages 0..9 written, 10..15 never touched */
	unsigned char *anon = mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		die("mmap shared anon");
	fill(anon, 10 * PAGE, 1);
	sprintf(path, "/proc/self/map_files/%lx-%lx", (unsigned long)anon, (unsigned long)anon + ANON_PAGES * PAGE);
	int afd = open(path, O_RDWR);
	if (afd < 0)
		die(path);
	/* the same object again, its second half only, read-only */
	unsigned char *alias = mmap(NULL, 8 * PAGE, PROT_READ, MAP_SHARED, afd, 8 * PAGE);
	if (alias == MAP_FAILED)
		die("mmap alias");
	close(afd);

	int mfd = memfd_create("amber-test", MFD_ALLOW_SEALING);
	if (mfd < 0)
		die("memfd_create");
	if (ftruncate(mfd, MEMFD_SIZE))
		die("ftruncate memfd");
	unsigned char *mem = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mem == MAP_FAILED)
		die("mmap memfd");
	fill(mem, MEMFD_SIZE, 2);
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		die("F_ADD_SEALS");
	close(mfd);

	int sfd = make_file(dir, "shared.dat", 2 * PAGE, 3, path);
	unsigned char *shf = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	if (shf == MAP_FAILED)
		die("mmap shared file");
	shf[5] = 0xAB; /* written through the mapping: lands in the file */
	close(sfd);
	char shared_path[4096];
	strcpy(shared_path, path);

	int gfd = make_file(dir, "ghost-shared.dat", 3 * PAGE, 4, ghost_shared);
	unsigned char *gsh = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (gsh == MAP_FAILED)
		die("mmap ghost shared");
	gsh[PAGE + 1] = 0xCD;
	close(gfd);
	unlink(ghost_shared);

	int pfd = make_file(dir, "ghost-private.dat", 4 * PAGE, 5, ghost_private);
	unsigned char *gpr = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0);
	if (gpr == MAP_FAILED)
		die("mmap ghost private");
	gpr[2 * PAGE] = 0xEF; /* a private copy of one page */
	close(pfd);
	unlink(ghost_private);

	ready_and_wait();

	check(anon, 10 * PAGE, 1, "shared anonymous");
	for (size_t i = 10 * PAGE; i < ANON_PAGES * PAGE; i++)
		if (anon[i]) {
			fail("untouched shared anonymous byte %zu is %u", i, anon[i]);
			break;
		}
	anon[8 * PAGE + 3] = 0x77;
	if (alias[3] != 0x77)
		fail("the two mappings of the shared anonymous object are no longer one object");
	check_maps_name(anon, "/dev/zero (deleted)");
	check_maps_name(alias, "/dev/zero (deleted)");

	check(mem, MEMFD_SIZE, 2, "memfd");
	check_maps_name(mem, "/memfd:amber-test (deleted)");
	sprintf(path, "/proc/self/map_files/%lx-%lx", (unsigned long)mem, (unsigned long)mem + 4 * PAGE);
	mfd = open(path, O_RDWR);
	if (mfd < 0)
		fail("open %s: %s", path, strerror(errno));
	else {
		int seals = fcntl(mfd, F_GET_SEALS);
		if (seals != (F_SEAL_SHRINK | F_SEAL_GROW))
			fail("memfd seals are %#x, expected %#x", seals, F_SEAL_SHRINK | F_SEAL_GROW);
		struct stat st;
		if (fstat(mfd, &st) || st.st_size != MEMFD_SIZE)
			fail("memfd size is %ld, expected %ld", (long)st.st_size, (long)MEMFD_SIZE);
		close(mfd);
	}

	if (shf[5] != 0xAB)
		fail("shared file mapping lost its write");
	sfd = open(shared_path, O_RDWR);
	unsigned char b = 0x5A;
	if (sfd < 0 || pwrite(sfd, &b, 1, 9) != 1)
		fail("pwrite %s", shared_path);
	else if (shf[9] != 0x5A)
		fail("a write to the file does not show in the MAP_SHARED mapping");
	if (sfd >= 0)
		close(sfd);

	if (gsh[PAGE + 1] != 0xCD)
		fail("deleted shared file lost its write");
	gsh[PAGE + 1] = pattern(4, PAGE + 1);
	check(gsh, 3 * PAGE, 4, "deleted shared file");
	check_maps_name(gsh, "ghost-shared.dat (deleted)");
	if (access(ghost_shared, F_OK) == 0)
		fail("%s exists again after restore", ghost_shared);

	if (gpr[2 * PAGE] != 0xEF)
		fail("deleted private file lost its private page");
	gpr[2 * PAGE] = pattern(5, 2 * PAGE);
	check(gpr, 4 * PAGE, 5, "deleted private file");
	check_maps_name(gpr, "ghost-private.dat (deleted)");
	if (access(ghost_private, F_OK) == 0)
		fail("%s exists again after restore", ghost_private);
	return finish();
}
