/* memhog SIZE_MB [fault-handlers]: touches SIZE_MB of anonymous memory with a pattern, reports
 * READY, and on SIGUSR1 verifies every word and prints PASS or FAIL. Used by the benchmark and
 * the incremental dump tests: each SIGUSR2 rewrites 1% of the pages (one page in every 100, at
 * an offset that changes per round) with the round's own pattern and prints
 * "DIRTIED <round> <pages>". fault-handlers: also a SIGBUS handler and SIGSEGV ignored, which a
 * dump must leave as they are. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE_WORDS (4096 / sizeof(uint64_t))

static volatile sig_atomic_t go, dirty;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void on_usr2(int sig)
{
	(void)sig;
	dirty = 1;
}

static uint64_t expected(size_t i, unsigned round)
{
	return (i * 0x9E3779B97F4A7C15ULL + 1) ^ ((uint64_t)round * 0xA5A5A5A5A5A5A5A5ULL);
}

int main(int argc, char **argv)
{
	/* Start like a daemon: drop fds leaked by whatever launched us. */
	syscall(SYS_close_range, 3, ~0U, 0);
	if (argc != 2 && !(argc == 3 && !strcmp(argv[2], "fault-handlers"))) {
		fprintf(stderr, "usage: %s SIZE_MB [fault-handlers]\n", argv[0]);
		return 2;
	}
	size_t size = (size_t)atol(argv[1]) << 20;
	size_t words = size / sizeof(uint64_t);
	size_t pages = size / 4096;
	uint64_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* the round that last wrote each page (0: the initial pattern) */
	unsigned char *round_of = calloc(pages, 1);
	if (mem == MAP_FAILED || !round_of) {
		perror("mmap");
		return 2;
	}
	for (size_t i = 0; i < words; i++)
		mem[i] = expected(i, 0);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	if (argc == 3) {
		/* as runtimes do: a SIGBUS handler, kept blocked for now, and SIGSEGV ignored */
		sa.sa_handler = on_usr2;
		sigaction(SIGBUS, &sa, NULL);
		signal(SIGSEGV, SIG_IGN);
	}
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	if (argc == 3)
		sigaddset(&block, SIGBUS);
	sigprocmask(SIG_BLOCK, &block, &old);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("READY %d\n", getpid());
	unsigned round = 0;
	while (!go) {
		sigsuspend(&old);
		if (dirty) {
			dirty = 0;
			round++;
			size_t n = 0;
			for (size_t block0 = 0; block0 + 100 <= pages; block0 += 100) {
				size_t p = block0 + (round * 37 + block0 / 100 * 13) % 100;
				for (size_t w = p * PAGE_WORDS; w < (p + 1) * PAGE_WORDS; w++)
					mem[w] = expected(w, round);
				round_of[p] = (unsigned char)round;
				n++;
			}
			printf("DIRTIED %u %zu\n", round, n);
		}
	}
	for (size_t i = 0; i < words; i++) {
		if (mem[i] != expected(i, round_of[i / PAGE_WORDS])) {
			printf("FAIL: word %zu at %p (page written in round %u)\n", i, (void *)&mem[i], round_of[i / PAGE_WORDS]);
			return 1;
		}
	}
	printf("PASS\n");
	return 0;
}
