/* shared_identity WORKDIR: one object, many holders. A memfd held as fd 3 and mapped MAP_SHARED,
 * a file deleted while open (fd 4) and mapped MAP_SHARED, and a MAP_SHARED|MAP_ANONYMOUS area, all
 * made before two forks: the root and children A and B all hold them. Prints READY <pid>. SIGUSR2 to A makes it replace its shared area by another shared
 * copy with the same contents (identity broken, contents equal: for compare). On SIGUSR1 the
 * root writes through the memfd fd and the shared area, each child must see both through its
 * mapping and answers through them; the root checks the answers. PASS or FAIL: lines. */
#include "target.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096
static char *anon, *memmap, *delmap;
static int memfd, delfd;
static volatile sig_atomic_t copy_now;
static void on_usr2(int sig) { (void)sig; copy_now = 1; }

static int child(int n)
{
	signal(SIGUSR2, on_usr2);
	sigset_t none;
	sigemptyset(&none);
	while (!got_usr1) {
		sigsuspend(&none);
		if (copy_now) {
			char *copy = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			memcpy(copy, anon, PAGE);
			mremap(copy, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, anon);
			copy_now = 0;
		}
	}
	/* the root has written "root" into both before signalling us */
	int bad = 0;
	for (int i = 0; i < 500 && (strcmp(anon, "root") || strcmp(memmap, "root") || strcmp(delmap, "root")); i++)
		usleep(10000);
	if (strcmp(anon, "root"))
		bad |= 1;
	if (strcmp(memmap, "root"))
		bad |= 2;
	if (strcmp(delmap, "root"))
		bad |= 4;
	sprintf(anon + 64 * n, "child %d", n);
	sprintf(memmap + 64 * n, "child %d", n);
	sprintf(delmap + 64 * n, "child %d", n);
	return bad;
}

int main(int argc, char **argv)
{
	start(1);
	if (argc != 2)
		return 2;
	memfd = memfd_create("identity", 0);
	if (memfd != 3 || ftruncate(memfd, PAGE))
		die("memfd_create");
	char path[4096];
	snprintf(path, sizeof path, "%s/deleted.dat", argv[1]);
	delfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (delfd != 4 || ftruncate(delfd, PAGE) || unlink(path))
		die("deleted.dat");
	delmap = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, delfd, 0);
	memmap = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (memmap == MAP_FAILED || anon == MAP_FAILED || delmap == MAP_FAILED)
		die("mmap");
	strcpy(anon, "before");
	strcpy(memmap, "before");
	pid_t kids[2];
	for (int n = 1; n <= 2; n++) {
		kids[n - 1] = fork();
		if (kids[n - 1] == 0)
			_exit(child(n));
	}
	ready_and_wait();
	strcpy(anon, "root");
	if (pwrite(memfd, "root", 5, 0) != 5 || pwrite(delfd, "root", 5, 0) != 5)
		fail("pwrite to the memfd or the deleted file");
	if (strcmp(memmap, "root"))
		fail("a write through the memfd fd is not seen through its mapping (\"%s\")", memmap);
	if (strcmp(delmap, "root"))
		fail("a write through the deleted file's fd is not seen through its mapping (\"%s\")", delmap);
	for (int n = 1; n <= 2; n++)
		kill(kids[n - 1], SIGUSR1);
	for (int n = 1; n <= 2; n++) {
		int st;
		if (waitpid(kids[n - 1], &st, 0) != kids[n - 1] || !WIFEXITED(st))
			fail("child %d did not exit (0x%x)", n, st);
		else if (WEXITSTATUS(st) & 1)
			fail("child %d does not see the root's write to the shared anonymous area", n);
		else if (WEXITSTATUS(st) & 2)
			fail("child %d does not see the root's write to the memfd", n);
		else if (WEXITSTATUS(st) & 4)
			fail("child %d does not see the root's write to the deleted file", n);
		char want[16], got[16] = { 0 };
		sprintf(want, "child %d", n);
		if (strcmp(anon + 64 * n, want))
			fail("the root does not see child %d's write to the shared anonymous area", n);
		if (pread(memfd, got, sizeof got - 1, 64 * n) < 0 || strcmp(got, want))
			fail("the root's memfd fd does not see child %d's write to its mapping", n);
		memset(got, 0, sizeof got);
		if (pread(delfd, got, sizeof got - 1, 64 * n) < 0 || strcmp(got, want))
			fail("the root's fd of the deleted file does not see child %d's write to its mapping", n);
	}
	return finish();
}
