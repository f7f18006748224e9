/* Shared helpers of the mem_* targets: READY / SIGUSR1 / PASS-FAIL protocol and smaps lookups. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL

static volatile sig_atomic_t got_usr1;
static int failures;

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	failures++;
}

static void die(const char *what)
{
	printf("SETUP ERROR: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(2);
}

static void start(void)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
}

static void ready_and_wait(void)
{
	printf("READY %d\n", getpid());
	while (!got_usr1)
		pause();
}

static int finish(void)
{
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}

/* The VmFlags line (or, with field "path", the maps line) of the mapping holding addr. */
static int vma_line(const void *addr, const char *field, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int inside = 0, found = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ' ') == line + strcspn(line, " ") &&
		    line[strcspn(line, "-")] == '-' && strncmp(line, "VmFlags", 7)) {
			inside = (unsigned long)addr >= s && (unsigned long)addr < e;
			if (inside && !strcmp(field, "path")) {
				snprintf(out, outlen, "%s", line);
				found = 1;
				break;
			}
			continue;
		}
		if (inside && !strncmp(line, field, strlen(field))) {
			snprintf(out, outlen, "%s", line);
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

__attribute__((unused)) static int has_vmflag(const void *addr, const char *flag)
{
	char line[512], want[8];
	if (!vma_line(addr, "VmFlags:", line, sizeof line))
		return 0;
	snprintf(want, sizeof want, " %s", flag);
	char *p = line;
	while ((p = strstr(p, want)) != NULL) {
		if (p[3] == ' ' || p[3] == '\n' || p[3] == '\0')
			return 1;
		p++;
	}
	return 0;
}
