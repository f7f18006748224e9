/* grant MODE ARG: what a restored unprivileged process holds, for tests that a restore grants
 * nothing. Meant to run as uid/gid 65534 (started through setpriv).
 *   ghost DIR      opens DIR/setid-ghost (its own, mode 04755, holding "ghost data"), unlinks it,
 *                  and after restore checks the fd's file: owner as before, mode, contents, link.
 *   hold FILE      opens FILE read-only and keeps it (a test edits the image to name another one).
 *   drop FILE      started as root: opens FILE, drops to uid/gid 65534 itself, and keeps it.
 * Prints READY <pid>, waits for SIGUSR1, checks, prints PASS or FAIL: lines. */
#include "target.h"
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <sys/stat.h>

static const char DATA[] = "ghost data";

static int ghost(const char *workdir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/setid-ghost", workdir);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		die("create setid-ghost");
	if (write(fd, DATA, sizeof DATA - 1) != (ssize_t)(sizeof DATA - 1) || fchmod(fd, 04755))
		die("fill setid-ghost");
	if (unlink(path))
		die("unlink setid-ghost");
	struct stat st, was;
	if (fstat(fd, &was))
		die("fstat");
	ready_and_wait();

	if (fstat(fd, &st))
		die("fstat");
	if (st.st_uid != was.st_uid || st.st_gid != was.st_gid)
		fail("unlinked file owned by %u:%u, not %u:%u", st.st_uid, st.st_gid, was.st_uid, was.st_gid);
	if ((st.st_mode & 07777) != 04755)
		fail("unlinked file mode 0%o, not 04755", st.st_mode & 07777);
	if (st.st_nlink != 0)
		fail("unlinked file has %lu links", (unsigned long)st.st_nlink);
	char buf[64] = { 0 };
	ssize_t n = pread(fd, buf, sizeof buf, 0);
	if (n != (ssize_t)(sizeof DATA - 1) || memcmp(buf, DATA, sizeof DATA - 1))
		fail("unlinked file holds '%.*s'", (int)(n > 0 ? n : 0), buf);
	char link[PATH_MAX + 16], want[PATH_MAX + 16];
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	ssize_t l = readlink(proc, link, sizeof link - 1);
	link[l > 0 ? l : 0] = 0;
	snprintf(want, sizeof want, "%s (deleted)", path);
	if (strcmp(link, want))
		fail("unlinked file reads '%s', not '%s'", link, want);
	return finish();
}

static int hold(const char *file, int drop)
{
	int fd = open(file, O_RDONLY);
	if (fd < 0)
		die("open the held file");
	if (drop && (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)))
		die("drop to nobody");
	ready_and_wait();
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	printf("HELD %s\n", buf);
	return finish();
}

int main(int argc, char **argv)
{
	start(0);
	if (argc != 3) {
		fprintf(stderr, "usage: %s ghost WORKDIR | hold FILE\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "ghost"))
		return ghost(argv[2]);
	if (!strcmp(argv[1], "hold") || !strcmp(argv[1], "drop"))
		return hold(argv[2], !strcmp(argv[1], "drop"));
	fprintf(stderr, "unknown mode %s\n", argv[1]);
	return 2;
}
