/*
 * mem_flags: PROT_NONE guards, data hidden behind PROT_NONE, a MAP_GROWSDOWN area, an mprotect-split range, an mremap'ed
 * region, an mlock'ed range with mlockall(MCL_FUTURE), madvise state (dc wf dd hg nh), and a
 * sparse 64 GiB MAP_NORESERVE area with a few pages touched. Each area sits between guards so
 * nothing merges. READY, SIGUSR1, then checks: PASS / FAIL.
 */
#include "mem_common.h"
#include <stdint.h>
#include <sys/mman.h>

#define SPARSE (64UL << 30)
#define NADV 5

static unsigned char *arena, *cursor;

/* The next area of `pages` pages, after a one-page PROT_NONE guard. */
static unsigned char *area(size_t pages, int prot, int flags)
{
	cursor += PAGE;
	unsigned char *p = mmap(cursor, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | flags, -1, 0);
	if (p == MAP_FAILED)
		die("mmap area");
	cursor += pages * PAGE;
	return p;
}

static void fill(unsigned char *p, size_t n, int seed) { for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 13); }

static void check(const unsigned char *p, size_t n, int seed, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 13)) {
			fail("%s: byte %zu changed", what, i);
			return;
		}
}

int main(void)
{
	start(0);
	/* one PROT_NONE reservation: whatever is not re-mapped inside stays a guard */
	arena = mmap(NULL, 4096 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (arena == MAP_FAILED)
		die("mmap arena");
	cursor = arena;

	unsigned char *down = area(4, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
	fill(down, 4 * PAGE, 1);

	unsigned char *split = area(8, PROT_READ | PROT_WRITE, 0);
	fill(split, 8 * PAGE, 2);
	if (mprotect(split + 3 * PAGE, 2 * PAGE, PROT_READ))
		die("mprotect");

	/* pages with data that the task itself can no longer read */
	unsigned char *hidden = area(4, PROT_READ | PROT_WRITE, 0);
	fill(hidden, 4 * PAGE, 5);
	if (mprotect(hidden, 4 * PAGE, PROT_NONE))
		die("mprotect hidden");

	unsigned char *src = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(src, 4 * PAGE, 3);
	cursor += PAGE;
	unsigned char *moved = mremap(src, 4 * PAGE, 6 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, cursor);
	if (moved == MAP_FAILED)
		die("mremap");
	cursor += 6 * PAGE;

	unsigned char *locked = area(4, PROT_READ | PROT_WRITE, 0);
	fill(locked, 4 * PAGE, 4);
	if (mlock(locked, 4 * PAGE))
		die("mlock");

	static const int advice[NADV] = {MADV_DONTFORK, MADV_WIPEONFORK, MADV_DONTDUMP, MADV_HUGEPAGE, MADV_NOHUGEPAGE};
	static const char *flag[NADV] = {"dc", "wf", "dd", "hg", "nh"};
	unsigned char *adv[NADV];
	for (int i = 0; i < NADV; i++) {
		adv[i] = area(4, PROT_READ | PROT_WRITE, 0);
		fill(adv[i], 4 * PAGE, 10 + i);
		if (madvise(adv[i], 4 * PAGE, advice[i]))
			die(flag[i]);
	}

	unsigned char *sparse = mmap(NULL, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sparse == MAP_FAILED)
		die("mmap 64 GiB");
	static const size_t touched[] = {0, 1, 12345, 1UL << 20, (SPARSE / PAGE) - 1};
	for (size_t i = 0; i < sizeof touched / sizeof *touched; i++)
		memset(sparse + touched[i] * PAGE, 0x40 + (int)i, PAGE);

	if (mlockall(MCL_FUTURE))
		die("mlockall");

	ready_and_wait();

	check(down, 4 * PAGE, 1, "growsdown area");
	if (!has_vmflag(down, "gd"))
		fail("growsdown area lost VM_GROWSDOWN");
	check(split, 8 * PAGE, 2, "mprotect-split range");
	if (has_vmflag(split + 3 * PAGE, "wr") || !has_vmflag(split, "wr"))
		fail("mprotect split lost");
	if (has_vmflag(hidden, "rd"))
		fail("PROT_NONE range with data became readable");
	if (mprotect(hidden, 4 * PAGE, PROT_READ))
		die("mprotect hidden back");
	check(hidden, 4 * PAGE, 5, "PROT_NONE range with data");
	check(moved, 4 * PAGE, 3, "mremap'ed region");
	for (size_t i = 4 * PAGE; i < 6 * PAGE; i++)
		if (moved[i]) {
			fail("grown part of the mremap'ed region is not zero");
			break;
		}
	check(locked, 4 * PAGE, 4, "mlocked range");
	if (!has_vmflag(locked, "lo"))
		fail("mlocked range is not locked");
	for (int i = 0; i < NADV; i++) {
		check(adv[i], 4 * PAGE, 10 + i, flag[i]);
		if (!has_vmflag(adv[i], flag[i]))
			fail("madvise %s lost", flag[i]);
	}
	for (size_t i = 0; i < sizeof touched / sizeof *touched; i++) {
		unsigned char *p = sparse + touched[i] * PAGE;
		if (p[0] != 0x40 + i || p[PAGE - 1] != 0x40 + i)
			fail("sparse page %zu lost", touched[i]);
	}
	if (sparse[2 * PAGE] != 0 || sparse[(SPARSE / 2)] != 0)
		fail("untouched sparse page is not zero");
	unsigned char *fresh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fresh == MAP_FAILED || !has_vmflag(fresh, "lo"))
		fail("mlockall(MCL_FUTURE) lost: a new mapping is not locked");
	return finish();
}
