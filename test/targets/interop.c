/* interop WORKDIR [tree|shm]: what a dump by one tool and a restore by another (amber, CRIU) must keep.
 *
 * Alone: a counter that ticks every 100 ms in nanosleep (dumped inside it), with a SIGUSR2 handler
 * installed with SA_SIGINFO and a mask, and its own FPU control state (MXCSR: round toward zero,
 * flush-to-zero; x87 control word: single precision).
 *
 * tree: the same root, plus
 *   - a second thread with an MXCSR of its own, waiting for the root's word to go;
 *   - WORKDIR/interop.data opened before the forks and left at offset 37, shared by all;
 *   - child A, which reads from a pipe, and child B, which wrote "one\n" into it before the dump
 *     and writes "two\n" after; each has the handler and FPU state too.
 *
 * shm: the root alone, with 4 pages of shared anonymous memory holding a pattern.
 *
 * On SIGUSR1 each process checks its own state (pid, parent, handler, FPU, file offset; A reads
 * both lines), children report by exit status, the root prints PASS or FAIL: lines. */
#include "target.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define MXCSR_WANT 0x7f80u        /* all exceptions masked, round toward zero, flush to zero */
#define THREAD_MXCSR_WANT 0x5f80u /* exceptions masked, round down, flush to zero */
#define X87_CW_WANT 0x007fu       /* exceptions masked, single precision, round to nearest */
#define FILE_OFFSET 37

static volatile sig_atomic_t usr2_seen;
static volatile int thread_go, thread_failed = -1;

static void on_usr2(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; usr2_seen++; }

static uint32_t mxcsr(void)
{
	uint32_t v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static uint16_t x87_cw(void)
{
	uint16_t v;
	__asm__ volatile("fnstcw %0" : "=m"(v));
	return v;
}

static void set_fpu(uint32_t m)
{
	uint16_t cw = X87_CW_WANT;
	__asm__ volatile("ldmxcsr %0" : : "m"(m));
	__asm__ volatile("fldcw %0" : : "m"(cw));
}

static void install_usr2(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr2;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaction(SIGUSR2, &sa, NULL);
}

/* The process's own state after a restore: its pid, the handler, the FPU, the signal arriving. */
static void check_self(const char *who, pid_t pid, uint32_t want_mxcsr)
{
	if (getpid() != pid)
		fail("%s: pid changed from %d to %d", who, pid, getpid());
	struct sigaction sa;
	sigaction(SIGUSR2, NULL, &sa);
	if (sa.sa_sigaction != on_usr2 || !(sa.sa_flags & SA_SIGINFO) || !(sa.sa_flags & SA_RESTART) || !sigismember(&sa.sa_mask, SIGTERM))
		fail("%s: SIGUSR2 handler lost (handler %p flags 0x%x)", who, (void *)sa.sa_sigaction, (unsigned)sa.sa_flags);
	if (mxcsr() != want_mxcsr)
		fail("%s: MXCSR is 0x%x, expected 0x%x", who, mxcsr(), want_mxcsr);
	if (x87_cw() != X87_CW_WANT)
		fail("%s: x87 control word is 0x%x, expected 0x%x", who, x87_cw(), X87_CW_WANT);
	int before = usr2_seen;
	raise(SIGUSR2);
	if (usr2_seen != before + 1)
		fail("%s: the SIGUSR2 handler did not run", who);
}

static void check_offset(const char *who, int fd)
{
	off_t at = lseek(fd, 0, SEEK_CUR);
	if (at != FILE_OFFSET)
		fail("%s: interop.data is at offset %ld, expected %d", who, (long)at, FILE_OFFSET);
}

static void *thread_main(void *arg)
{
	(void)arg;
	set_fpu(THREAD_MXCSR_WANT);
	struct timespec ts = { 0, 20 * 1000000L };
	while (!thread_go)
		nanosleep(&ts, NULL);
	thread_failed = mxcsr() != THREAD_MXCSR_WANT || x87_cw() != X87_CW_WANT;
	return NULL;
}

static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = 0;
	return 0;
}

static void expect_line(int fd, const char *want)
{
	char got[64];
	if (read_line(fd, got, sizeof got) < 0)
		fail("A: pipe read failed or ended: %s", strerror(errno));
	else if (strcmp(got, want) != 0)
		fail("A: pipe gave \"%.*s\", expected \"%.*s\"", (int)strcspn(got, "\n"), got, (int)strcspn(want, "\n"), want);
}

/* Children: SIGUSR1 stays blocked outside sigsuspend, so the root's signal is never lost. */
static int child(char name, int pipe_fd, int data_fd)
{
	pid_t pid = getpid(), parent = getppid();
	char who[2] = { name, 0 };
	if (name == 'B' && write(pipe_fd, "one\n", 4) != 4)
		die("write one");
	wait_usr1();
	if (getppid() != parent)
		fail("%s: parent changed from %d to %d", who, parent, getppid());
	check_self(who, pid, MXCSR_WANT);
	check_offset(who, data_fd);
	if (name == 'B') {
		if (write(pipe_fd, "two\n", 4) != 4)
			fail("B: writing into the pipe: %s", strerror(errno));
	} else {
		expect_line(pipe_fd, "one\n");
		expect_line(pipe_fd, "two\n");
	}
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: interop WORKDIR [tree|shm]\n");
		return 2;
	}
	int tree = argc > 2 && strcmp(argv[2], "tree") == 0;
	int shm = argc > 2 && strcmp(argv[2], "shm") == 0;
	start(tree);
	install_usr2();
	set_fpu(MXCSR_WANT);
	pid_t pid = getpid();

	unsigned char *shared = NULL;
	if (shm) {
		shared = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (shared == MAP_FAILED)
			die("mmap shared");
		for (int i = 0; i < 4 * 4096; i++)
			shared[i] = (unsigned char)(i * 7 + 3);
	}
	pid_t kids[2] = { 0, 0 };
	int data_fd = -1;
	pthread_t thread;
	if (tree) {
		char path[4096];
		snprintf(path, sizeof path, "%s/interop.data", argv[1]);
		data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (data_fd < 0)
			die("open interop.data");
		char block[100];
		memset(block, 'x', sizeof block);
		if (write(data_fd, block, sizeof block) != sizeof block || lseek(data_fd, FILE_OFFSET, SEEK_SET) != FILE_OFFSET)
			die("fill interop.data");
		int p[2];
		if (pipe(p) < 0)
			die("pipe");
		for (int i = 0; i < 2; i++) {
			kids[i] = fork();
			if (kids[i] < 0)
				die("fork");
			if (kids[i] == 0) {
				close(p[i == 0 ? 1 : 0]);
				_exit(child(i == 0 ? 'A' : 'B', p[i == 0 ? 0 : 1], data_fd));
			}
		}
		if (pthread_create(&thread, NULL, thread_main, NULL) != 0)
			die("pthread_create");
		/* READY once B's first line is in the pipe, so the dump finds it there */
		int queued = 0;
		for (int i = 0; i < 500 && queued < 4; i++) {
			struct timespec ts = { 0, 10 * 1000000L };
			nanosleep(&ts, NULL);
			if (ioctl(p[0], FIONREAD, &queued) < 0)
				die("FIONREAD");
		}
		close(p[0]);
		close(p[1]);
		sigset_t usr1;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		sigprocmask(SIG_UNBLOCK, &usr1, NULL);
	}

	unsigned long tick = 0, steps = 0;
	printf("READY %d\n", pid);
	while (!got_usr1) {
		tick++;
		steps++;
		struct timespec ts = { 0, 100 * 1000000L };
		/* EINTR ends a sleep early: the loop goes on, so a restore that ends it that way is fine */
		if (nanosleep(&ts, NULL) < 0 && errno != EINTR) {
			fail("nanosleep: %s", strerror(errno));
			break;
		}
	}
	if (tick != steps || tick == 0)
		fail("tick count %lu does not match %lu loop steps", tick, steps);
	check_self("root", pid, MXCSR_WANT);
	for (int i = 0; shared && i < 4 * 4096; i++)
		if (shared[i] != (unsigned char)(i * 7 + 3)) {
			fail("shared memory: byte %d is %u, expected %u", i, shared[i], (unsigned char)(i * 7 + 3));
			break;
		}
	if (tree) {
		check_offset("root", data_fd);
		thread_go = 1;
		pthread_join(thread, NULL);
		if (thread_failed != 0)
			fail("thread: its MXCSR or x87 control word changed");
		kill(kids[0], SIGUSR1);
		kill(kids[1], SIGUSR1);
		for (int i = 0; i < 2; i++) {
			int st;
			if (waitpid(kids[i], &st, 0) != kids[i])
				fail("waitpid %c: %s", 'A' + i, strerror(errno));
			else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				fail("child %c failed its check (status 0x%x)", 'A' + i, st);
		}
	}
	return finish();
}
