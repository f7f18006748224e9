#include "target.h"
#include <sys/syscall.h>
/*
 * skeleton: sets up a broad sample of process state, prints "READY <pid>", waits
 * for SIGUSR1 (sent after a restore), then checks that state and prints PASS or
 * FAIL: <what> lines, exiting 0 or 1.
 *
 * Usage: skeleton WORKDIR   (WORKDIR is an existing scratch directory)
 * AMBER_TARGET_SELFTEST_FAIL=1 corrupts one heap byte so the harness can prove
 * that a failing check is reported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xmmintrin.h>

#define HEAP_BYTES (64UL << 20)
#define HEAP_WORDS (HEAP_BYTES / sizeof(uint64_t))
#define GOLDEN 0x9E3779B97F4A7C15ULL
#define PAGE 4096
#define MAP_PAGES 4
#define MODIFIED_PAGE 1
#define LOG_FD 200
#define CLOEXEC_FD 201
#define INPUT_TEXT "0123456789abcdefghij\n"
#define INPUT_SKIP 5
#define READY_TICKS 20
#define AFTER_TICKS 10
#define TLS_MAGIC 0x5EED1234ABCD0042ULL
#define MXCSR_FTZ 0x8000u
#define MXCSR_DAZ 0x0040u
#define MXCSR_CONTROL 0xFFC0u /* the low six bits are sticky exception flags */

static volatile sig_atomic_t usr2_runs;
static __thread uint64_t tls_value;

static uint64_t *heap;
static unsigned char *mapped;
static char workdir[4096];
static int input_fd;
static pid_t ready_pid;
static struct sigaction usr2_before;
static double div_upward;
static long double div_upward_x87;
static unsigned mxcsr_before;
static volatile uint64_t counter, shadow;
static int loop_error;

static void on_usr2(int sig) { (void)sig; usr2_runs++; }

static void path_in_workdir(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", workdir, name);
}

static unsigned char file_byte(int page, int i) { return (unsigned char)(0x40 + page * 7 + (i % 13)); }

/* One loop step; an interrupted sleep (EINTR, also after a restore) is resumed. */
static void tick(void)
{
	struct timespec ts = { 0, 1000000 };
	counter++;
	shadow += 3;
	if (shadow != counter * 3)
		loop_error = -1;
	while (nanosleep(&ts, &ts) == -1) {
		if (errno != EINTR) {
			loop_error = errno;
			break;
		}
		if (got_usr1)
			break;
	}
}

static double divide(double a, double b) { volatile double x = a, y = b; return x / y; }
static long double divide_x87(long double a, long double b) { volatile long double x = a, y = b; return x / y; }

static void setup_heap(void)
{
	heap = malloc(HEAP_BYTES);
	if (!heap)
		die("malloc 64 MiB");
	for (uint64_t i = 0; i < HEAP_WORDS; i++)
		heap[i] = i * GOLDEN;
}

static void setup_mapping(void)
{
	char path[4200];
	unsigned char page[PAGE];
	path_in_workdir(path, sizeof path, "mapped.dat");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("create mapped.dat");
	for (int p = 0; p < MAP_PAGES; p++) {
		for (int i = 0; i < PAGE; i++)
			page[i] = file_byte(p, i);
		if (write(fd, page, PAGE) != PAGE)
			die("write mapped.dat");
	}
	mapped = mmap(NULL, MAP_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (mapped == MAP_FAILED)
		die("mmap mapped.dat");
	close(fd);
	memset(mapped + MODIFIED_PAGE * PAGE, 0xEE, PAGE);
	/* Touch another page read-only so it is present but still file-backed. */
	if (mapped[3 * PAGE] != file_byte(3, 0))
		die("mapped.dat readback");
}

static void setup_fds(void)
{
	char path[4200];
	path_in_workdir(path, sizeof path, "append.log");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (fd < 0 || dup2(fd, LOG_FD) != LOG_FD)
		die("open append.log");
	close(fd);
	if (write(LOG_FD, "before\n", 7) != 7)
		die("write append.log");

	path_in_workdir(path, sizeof path, "input.txt");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, INPUT_TEXT, strlen(INPUT_TEXT)) != (ssize_t)strlen(INPUT_TEXT))
		die("create input.txt");
	close(fd);
	input_fd = open(path, O_RDONLY);
	char skip[INPUT_SKIP];
	if (input_fd < 0 || read(input_fd, skip, INPUT_SKIP) != INPUT_SKIP)
		die("read input.txt");

	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup3(fd, CLOEXEC_FD, O_CLOEXEC) != CLOEXEC_FD)
		die("cloexec fd");
	close(fd);
}

static void setup_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction SIGUSR1");

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGHUP);
	sigaddset(&sa.sa_mask, SIGRTMIN + 1);
	if (sigaction(SIGUSR2, &sa, NULL) || sigaction(SIGUSR2, NULL, &usr2_before))
		die("sigaction SIGUSR2");

	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGRTMIN + 3);
	if (sigprocmask(SIG_BLOCK, &block, NULL))
		die("sigprocmask");
}

static void setup_fpu(void)
{
	if (fesetround(FE_UPWARD))
		die("fesetround");
	_mm_setcsr(_mm_getcsr() | MXCSR_FTZ | MXCSR_DAZ);
	mxcsr_before = _mm_getcsr() & MXCSR_CONTROL;
	div_upward = divide(1.0, 3.0);
	div_upward_x87 = divide_x87(1.0L, 3.0L);
}

static void check_heap(void)
{
	for (uint64_t i = 0; i < HEAP_WORDS; i++) {
		if (heap[i] != i * GOLDEN) {
			fail("heap word %lu at byte offset %lu is 0x%016lx, expected 0x%016lx", (unsigned long)i,
			     (unsigned long)(i * 8), (unsigned long)heap[i], (unsigned long)(i * GOLDEN));
			return;
		}
	}
}

static void check_mapping(void)
{
	for (int p = 0; p < MAP_PAGES; p++) {
		for (int i = 0; i < PAGE; i++) {
			unsigned char want = p == MODIFIED_PAGE ? 0xEE : file_byte(p, i);
			if (mapped[p * PAGE + i] != want) {
				fail("private mapping page %d byte %d is 0x%02x, expected 0x%02x", p, i,
				     mapped[p * PAGE + i], want);
				return;
			}
		}
	}
	char path[4200];
	unsigned char b;
	path_in_workdir(path, sizeof path, "mapped.dat");
	int fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, &b, 1, MODIFIED_PAGE * PAGE) != 1 || b != file_byte(MODIFIED_PAGE, 0))
		fail("mapped.dat on disk changed (private mapping leaked to the file)");
	if (fd >= 0)
		close(fd);
}

static void check_fds(void)
{
	char path[4200], buf[64];
	int fl = fcntl(LOG_FD, F_GETFL);
	if (fl < 0)
		fail("fd %d (append.log) is not open", LOG_FD);
	else if (!(fl & O_APPEND))
		fail("fd %d lost O_APPEND (flags 0%o)", LOG_FD, fl);
	/* With O_APPEND the write still lands at the end despite the seek. */
	lseek(LOG_FD, 0, SEEK_SET);
	if (write(LOG_FD, "after\n", 6) != 6)
		fail("write to fd %d: %s", LOG_FD, strerror(errno));
	path_in_workdir(path, sizeof path, "append.log");
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	buf[n < 0 ? 0 : n] = 0;
	if (strcmp(buf, "before\nafter\n") != 0)
		fail("append.log contains \"%s\", expected \"before\\nafter\\n\"", buf);
	if (fcntl(LOG_FD, F_GETFD) != 0)
		fail("fd %d should not be close-on-exec", LOG_FD);

	off_t pos = lseek(input_fd, 0, SEEK_CUR);
	if (pos != INPUT_SKIP)
		fail("input.txt fd %d offset is %ld, expected %d", input_fd, (long)pos, INPUT_SKIP);
	n = read(input_fd, buf, 5);
	if (n != 5 || memcmp(buf, INPUT_TEXT + INPUT_SKIP, 5) != 0)
		fail("read after restore from input.txt fd %d did not continue at offset %d", input_fd, INPUT_SKIP);
	if ((fcntl(input_fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
		fail("input.txt fd %d is not read-only", input_fd);

	int fdfl = fcntl(CLOEXEC_FD, F_GETFD);
	if (fdfl < 0)
		fail("fd %d (/dev/null) is not open", CLOEXEC_FD);
	else if (!(fdfl & FD_CLOEXEC))
		fail("fd %d lost FD_CLOEXEC", CLOEXEC_FD);
}

static void check_signals(void)
{
	struct sigaction now;
	if (sigaction(SIGUSR2, NULL, &now)) {
		fail("sigaction query SIGUSR2: %s", strerror(errno));
		return;
	}
	if (now.sa_handler != on_usr2)
		fail("SIGUSR2 handler is %p, expected %p", (void *)now.sa_handler, (void *)on_usr2);
	if (now.sa_flags != usr2_before.sa_flags || !(now.sa_flags & SA_RESTART))
		fail("SIGUSR2 flags are 0x%x, expected 0x%x", now.sa_flags, usr2_before.sa_flags);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&now.sa_mask, s) != sigismember(&usr2_before.sa_mask, s))
			fail("SIGUSR2 sa_mask differs at signal %d", s);
	if (!sigismember(&now.sa_mask, SIGHUP) || !sigismember(&now.sa_mask, SIGRTMIN + 1))
		fail("SIGUSR2 sa_mask lost SIGHUP or SIGRTMIN+1");
	int before = usr2_runs;
	raise(SIGUSR2);
	if (usr2_runs != before + 1)
		fail("SIGUSR2 handler did not run on raise()");

	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	if (!sigismember(&mask, SIGRTMIN + 3))
		fail("SIGRTMIN+3 is no longer blocked");
	if (sigismember(&mask, SIGUSR1) || sigismember(&mask, SIGUSR2))
		fail("SIGUSR1 or SIGUSR2 became blocked");
}

static void check_fpu(void)
{
	if (fegetround() != FE_UPWARD)
		fail("rounding mode is %d, expected FE_UPWARD (%d)", fegetround(), FE_UPWARD);
	if ((_mm_getcsr() & MXCSR_CONTROL) != mxcsr_before)
		fail("MXCSR control bits are 0x%x, expected 0x%x", _mm_getcsr() & MXCSR_CONTROL, mxcsr_before);
	double d = divide(1.0, 3.0);
	if (memcmp(&d, &div_upward, sizeof d) != 0)
		fail("1.0/3.0 (SSE) is %.20g, expected %.20g rounded upward", d, div_upward);
	long double ld = divide_x87(1.0L, 3.0L);
	if (memcmp(&ld, &div_upward_x87, 10) != 0)
		fail("1.0L/3.0L (x87) is %.25Lg, expected %.25Lg rounded upward", ld, div_upward_x87);
	fesetround(FE_TONEAREST);
	if (divide(1.0, 3.0) == d)
		fail("division does not depend on the rounding mode (test is vacuous)");
	fesetround(FE_UPWARD);
}

/* A 1 GiB MAP_NORESERVE reservation with three pages written and one only read (the zero
 * page), a PROT_NONE guard, and an anonymous page made read-only after it was written. */
#define SPARSE_SIZE (1UL << 30)
static const size_t sparse_pages[] = { 0, 77777, (SPARSE_SIZE / 4096) - 1 };
static unsigned char *sparse, *guard, *rdonly;

static void setup_layout(void)
{
	sparse = mmap(NULL, SPARSE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	guard = mmap(NULL, 16 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rdonly = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sparse == MAP_FAILED || guard == MAP_FAILED || rdonly == MAP_FAILED)
		die("mmap (layout)");
	for (size_t i = 0; i < sizeof sparse_pages / sizeof sparse_pages[0]; i++)
		memset(sparse + sparse_pages[i] * 4096, 0xA0 + (int)i, 4096);
	if (*(volatile unsigned char *)(sparse + 5 * 4096) != 0)
		die("fresh page not zero");
	memset(rdonly, 0x5A, 4096);
	if (mprotect(rdonly, 4096, PROT_READ))
		die("mprotect");
}

static void check_layout(void)
{
	for (size_t i = 0; i < sizeof sparse_pages / sizeof sparse_pages[0]; i++)
		for (size_t b = 0; b < 4096; b++)
			if (sparse[sparse_pages[i] * 4096 + b] != 0xA0 + i) {
				fail("sparse page %zu byte %zu is 0x%02x", sparse_pages[i], b, sparse[sparse_pages[i] * 4096 + b]);
				break;
			}
	for (size_t b = 0; b < 4096; b++)
		if (sparse[5 * 4096 + b] || sparse[123456 * 4096 + b]) {
			fail("untouched sparse page is not zero");
			break;
		}
	for (size_t b = 0; b < 4096; b++)
		if (rdonly[b] != 0x5A) {
			fail("read-only page byte %zu is 0x%02x", b, rdonly[b]);
			break;
		}
	unsigned char vec;
	/* mincore says whether the guard is mapped at all; its protection is compared in maps by the harness */
	if (mincore(guard, 4096, &vec))
		fail("PROT_NONE guard is not mapped: %s", strerror(errno));
}

static void check_task(void)
{
	if (tls_value != TLS_MAGIC)
		fail("__thread value is 0x%lx, expected 0x%lx", (unsigned long)tls_value, (unsigned long)TLS_MAGIC);
	if (getpid() != ready_pid)
		fail("getpid() is %d, READY said %d", getpid(), ready_pid);
	if (loop_error)
		fail("wait loop broke: %s", loop_error < 0 ? "counter invariant" : strerror(loop_error));
	uint64_t at_signal = counter;
	printf("ticks %lu\n", (unsigned long)at_signal);
	if (at_signal <= READY_TICKS)
		fail("counter is %lu, not above %d from READY", (unsigned long)at_signal, READY_TICKS);
	got_usr1 = 0;
	for (int i = 0; i < AFTER_TICKS; i++)
		tick();
	if (counter != at_signal + AFTER_TICKS || loop_error)
		fail("loop did not keep counting after SIGUSR1 (%lu -> %lu)", (unsigned long)at_signal,
		     (unsigned long)counter);
}

int main(int argc, char **argv)
{
	start(0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
		return 2;
	}
	snprintf(workdir, sizeof workdir, "%s", argv[1]);
	tls_value = TLS_MAGIC;
	setup_heap();
	setup_mapping();
	setup_fds();
	setup_signals();
	setup_fpu();
	setup_layout();
	if (getenv("AMBER_TARGET_SELFTEST_FAIL"))
		((unsigned char *)heap)[12345] ^= 0xFF;
	while (counter < READY_TICKS)
		tick();
	ready_pid = getpid();
	printf("READY %d\n", ready_pid);
	do
		tick();
	while (!got_usr1);

	check_heap();
	check_mapping();
	check_fds();
	check_signals();
	check_fpu();
	check_layout();
	check_task();
	return finish();
}
