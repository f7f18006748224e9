/* Shared helpers of the mem_* targets: the target protocol and smaps lookups. */
#include "target.h"
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL

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
