/* seccomp: a process under two stacked seccomp filters (with no_new_privs): the first makes
 * getppid() fail with errno 42, the second makes getpgid() fail with errno 43. Prints READY
 * <pid>; on SIGUSR1 checks that both still hold, that everything else still works, and what
 * /proc says (Seccomp: 2, two filters, NoNewPrivs: 1): PASS or FAIL: lines. */
#include "target.h"
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>


static int deny(int nr, int err)
{
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fprog = { sizeof prog / sizeof prog[0], prog };
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
}

static char *status_line(const char *key, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/status", "r");
	out[0] = 0;
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			snprintf(out, len, "%s", line + strlen(key) + 1);
			out[strcspn(out, "\n")] = 0;
			char *p = out;
			while (*p == ' ' || *p == '\t')
				p++;
			memmove(out, p, strlen(p) + 1);
		}
	if (f)
		fclose(f);
	return out;
}

int main(void)
{
	start(0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || deny(SYS_getppid, 42) || deny(SYS_getpgid, 43)) {
		perror("seccomp");
		return 2;
	}
	ready_and_wait();
	errno = 0;
	if (syscall(SYS_getppid) != -1 || errno != 42)
		printf("FAIL: getppid is not denied with errno 42 (errno %d)\n", errno), failures++;
	errno = 0;
	if (syscall(SYS_getpgid, 0) != -1 || errno != 43)
		printf("FAIL: getpgid is not denied with errno 43 (errno %d)\n", errno), failures++;
	if (syscall(SYS_getpid) != getpid() || getpid() <= 0)
		printf("FAIL: getpid does not work\n"), failures++;
	char v[64];
	if (strcmp(status_line("Seccomp", v, sizeof v), "2") != 0)
		printf("FAIL: Seccomp: %s, expected 2\n", v), failures++;
	if (strcmp(status_line("Seccomp_filters", v, sizeof v), "2") != 0)
		printf("FAIL: Seccomp_filters: %s, expected 2\n", v), failures++;
	if (strcmp(status_line("NoNewPrivs", v, sizeof v), "1") != 0)
		printf("FAIL: NoNewPrivs: %s, expected 1\n", v), failures++;
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
