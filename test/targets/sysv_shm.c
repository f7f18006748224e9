/*
 * sysv_shm KEY: SysV shared memory as the ipc plugin restores it, in the host's IPC namespace.
 *  A (key KEY, 3 pages + 100 bytes, 0640, SHM_LOCKed): attached by the parent, its last page made
 *    read-only (two VMAs), inherited by the child, which also attaches it SHM_RDONLY and unmaps the
 *    last page of that; pages 0 and 2 written, page 1 never touched.
 *  B (IPC_PRIVATE, one page): attached by the parent before the fork, then IPC_RMID: removed but
 *    attached by both.
 *  C (key KEY+1, 2 pages, 0604, created as 4321:5432, owner 1234:2345): filled, then detached:
 *    attached by nobody.
 *  D (key KEY+2, 2 MiB, 0600): attached by the parent, pages 0 and 300 written, the rest absent.
 * Prints READY <pid>; on SIGUSR1 the parent checks ids, keys, modes, owners, sizes, contents and
 * attach counts, writes into A, and wakes the child, which sees that write through both its
 * attaches, checks its read-only one and writes into B, which the parent then sees. PASS / FAIL.
 */
#include "target.h"
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define PAGE 4096UL
#define A_SIZE (3 * PAGE + 100)
#define C_SIZE (2 * PAGE)
#define C_UID 1234
#define C_GID 2345
#define C_CUID 4321
#define C_CGID 5432
#define D_SIZE (2UL << 20)
#define D_PAGE 300

static unsigned char pattern(int seed, size_t i) { return (unsigned char)(seed * 29 + i * 13 + (i >> 12)); }

static void fill(unsigned char *p, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(seed, i);
}

static int same(const unsigned char *p, size_t n, int seed, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(seed, i)) {
			fail("%s: byte %zu is %u, expected %u", what, i, p[i], pattern(seed, i));
			return 0;
		}
	return 1;
}

static void zeros(const unsigned char *p, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (p[i]) {
			fail("%s: byte %zu is %u, expected 0", what, i, p[i]);
			return;
		}
}

static struct shmid_ds stat_of(int id, const char *what)
{
	struct shmid_ds ds;
	memset(&ds, 0, sizeof ds);
	if (shmctl(id, IPC_STAT, &ds) < 0)
		fail("%s: IPC_STAT of id %d: %s", what, id, strerror(errno));
	return ds;
}

static void expect_desc(int id, const char *what, key_t key, unsigned mode, uid_t uid, gid_t gid, uid_t cuid, gid_t cgid, size_t size,
			unsigned long nattch)
{
	struct shmid_ds ds = stat_of(id, what);
	if (ds.shm_perm.__key != key)
		fail("%s: key 0x%x, expected 0x%x", what, ds.shm_perm.__key, key);
	if (ds.shm_perm.mode != mode)
		fail("%s: mode 0%o, expected 0%o", what, ds.shm_perm.mode, mode);
	if (ds.shm_perm.uid != uid || ds.shm_perm.gid != gid)
		fail("%s: owner %u:%u, expected %u:%u", what, ds.shm_perm.uid, ds.shm_perm.gid, uid, gid);
	if (ds.shm_perm.cuid != cuid || ds.shm_perm.cgid != cgid)
		fail("%s: creator %u:%u, expected %u:%u", what, ds.shm_perm.cuid, ds.shm_perm.cgid, cuid, cgid);
	if (ds.shm_segsz != size)
		fail("%s: size %zu, expected %zu", what, ds.shm_segsz, size);
	if (ds.shm_nattch != nattch)
		fail("%s: %lu attaches, expected %lu", what, ds.shm_nattch, nattch);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	key_t key = (key_t)strtoul(argv[1], NULL, 0);
	start(1);

	int a = shmget(key, A_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	int b = shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600);
	if (setegid(C_CGID) < 0 || seteuid(C_CUID) < 0)
		die("seteuid");
	int c = shmget(key + 1, C_SIZE, IPC_CREAT | IPC_EXCL | 0604);
	if (seteuid(0) < 0 || setegid(0) < 0)
		die("seteuid back");
	int d = shmget(key + 2, D_SIZE, IPC_CREAT | IPC_EXCL | 0600);
	if (a < 0 || b < 0 || c < 0 || d < 0)
		die("shmget");
	unsigned char *pa = shmat(a, NULL, 0), *pb = shmat(b, NULL, 0), *pc = shmat(c, NULL, 0), *pd = shmat(d, NULL, 0);
	if (pa == (void *)-1 || pb == (void *)-1 || pc == (void *)-1 || pd == (void *)-1)
		die("shmat");
	fill(pd, PAGE, 9);
	fill(pd + D_PAGE * PAGE, PAGE, 11);
	fill(pa, PAGE, 1);
	fill(pa + 2 * PAGE, A_SIZE - 2 * PAGE, 3);
	if (mprotect(pa + 3 * PAGE, PAGE, PROT_READ) < 0)
		die("mprotect");
	if (shmctl(a, SHM_LOCK, NULL) < 0)
		die("SHM_LOCK");
	fill(pb, PAGE, 5);
	if (shmctl(b, IPC_RMID, NULL) < 0)
		die("IPC_RMID");
	fill(pc, C_SIZE, 7);
	struct shmid_ds cds = stat_of(c, "C");
	cds.shm_perm.uid = C_UID;
	cds.shm_perm.gid = C_GID;
	if (shmctl(c, IPC_SET, &cds) < 0)
		die("IPC_SET");
	if (shmdt(pc) < 0)
		die("shmdt");

	int sync[2];
	if (pipe(sync) < 0)
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a parent killed by a failed test */
		unsigned char *ro = shmat(a, NULL, SHM_RDONLY);
		if (ro == (void *)-1)
			die("shmat SHM_RDONLY");
		if (munmap(ro + 3 * PAGE, PAGE) < 0)
			die("munmap");
		if (write(sync[1], "x", 1) != 1)
			die("write");
		wait_usr1();
		if (pa[10] != 0xab || ro[10] != 0xab)
			fail("child: the parent's write into A is not seen (%u through its attach, %u read-only)", pa[10], ro[10]);
		same(ro + 2 * PAGE, PAGE, 3, "child: A page 2 read-only");
		if (mprotect(ro, PAGE, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
			fail("child: its SHM_RDONLY attach of A could be made writable");
		if (pb[20] != 0xcd)
			fail("child: the parent's write into B is not seen (%u)", pb[20]);
		pb[30] = 0xef;
		exit(failures ? 1 : 0);
	}
	char x;
	if (read(sync[0], &x, 1) != 1)
		die("read");

	/* 2 VMAs each in parent and child, and the child's read-only one */
	const unsigned long a_attaches = 5, b_attaches = 2;
	printf("READY %d\n", getpid());
	wait_usr1();

	expect_desc(a, "A", key, 0640 | SHM_LOCKED, 0, 0, 0, 0, A_SIZE, a_attaches);
	expect_desc(b, "B", IPC_PRIVATE, 0600 | SHM_DEST, 0, 0, 0, 0, PAGE, b_attaches);
	expect_desc(c, "C", key + 1, 0604, C_UID, C_GID, C_CUID, C_CGID, C_SIZE, 0);
	expect_desc(d, "D", key + 2, 0600, 0, 0, 0, 0, D_SIZE, 2);
	same(pd, PAGE, 9, "D page 0");
	same(pd + D_PAGE * PAGE, PAGE, 11, "D page 300");
	zeros(pd + PAGE, PAGE, "D page 1");
	if (shmget(key, 0, 0) != a)
		fail("key 0x%x does not find A (id %d) any more", key, a);
	same(pa, PAGE, 1, "A page 0");
	zeros(pa + PAGE, PAGE, "A page 1");
	same(pa + 2 * PAGE, A_SIZE - 2 * PAGE, 3, "A pages 2-3");
	if (mprotect(pa + 3 * PAGE, PAGE, PROT_READ | PROT_WRITE) < 0)
		fail("A: the parent's read-only part cannot be made writable again: %s", strerror(errno));
	same(pb, PAGE, 5, "B");
	pc = shmat(c, NULL, SHM_RDONLY);
	if (pc == (void *)-1)
		fail("C: shmat: %s", strerror(errno));
	else {
		same(pc, C_SIZE, 7, "C");
		shmdt(pc);
	}

	pa[10] = 0xab;
	pb[20] = 0xcd;
	kill(child, SIGUSR1);
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("child failed (status 0x%x)", st);
	if (pb[30] != 0xef)
		fail("the child's write into B is not seen (%u)", pb[30]);
	shmctl(a, IPC_RMID, NULL);
	shmctl(c, IPC_RMID, NULL);
	shmctl(d, IPC_RMID, NULL);
	return finish();
}
