/* memhog SIZE_MB: touches SIZE_MB of anonymous memory with a pattern, reports READY, and on
 * SIGUSR1 verifies every word and prints PASS or FAIL. Used by the benchmark. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

int main(int argc, char **argv)
{
	/* Start like a daemon: drop fds leaked by whatever launched us. */
	syscall(SYS_close_range, 3, ~0U, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s SIZE_MB\n", argv[0]);
		return 2;
	}
	size_t size = (size_t)atol(argv[1]) << 20;
	size_t words = size / sizeof(uint64_t);
	uint64_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t i = 0; i < words; i++)
		mem[i] = i * 0x9E3779B97F4A7C15ULL + 1;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("READY %d\n", getpid());
	while (!go)
		pause();
	for (size_t i = 0; i < words; i++) {
		if (mem[i] != i * 0x9E3779B97F4A7C15ULL + 1) {
			printf("FAIL: word %zu at %p\n", i, (void *)&mem[i]);
			return 1;
		}
	}
	printf("PASS\n");
	return 0;
}
