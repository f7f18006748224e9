/* ns_fds: holds fds of its own namespaces, a kind no built-in plugin owns (the example plugin in
 * test/fixtures does): fd 3 its net namespace, fd 4 a dup of fd 3 (one open file), fd 5 its uts
 * namespace, close-on-exec. Prints READY <pid>; on SIGUSR1 checks that each fd still names the
 * namespace it is in (same nsfs inode, NS_GET_NSTYPE says which kind), that 3 and 4 share one
 * open file (kcmp) and the close-on-exec flags, and prints PASS or FAIL: lines. */
#include "target.h"
#include <fcntl.h>
#include <sched.h>
#include <linux/kcmp.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

static void check_ns(int fd, const char *ns, int type)
{
	char path[64];
	struct stat held, mine;
	snprintf(path, sizeof path, "/proc/self/ns/%s", ns);
	if (fstat(fd, &held) || stat(path, &mine)) {
		fail("fd %d: stat: %s", fd, strerror(errno));
		return;
	}
	if (held.st_dev != mine.st_dev || held.st_ino != mine.st_ino)
		fail("fd %d names %s namespace inode %lu, the task is in %lu", fd, ns, (unsigned long)held.st_ino, (unsigned long)mine.st_ino);
	int got = ioctl(fd, NS_GET_NSTYPE);
	if (got != type)
		fail("fd %d: NS_GET_NSTYPE says %d (%s), not %d", fd, got, got < 0 ? strerror(errno) : "other", type);
}

int main(void)
{
	start(1);
	if (open("/proc/self/ns/net", O_RDONLY) != 3 || dup(3) != 4 || open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC) != 5)
		die("open /proc/self/ns");
	ready_and_wait();
	check_ns(3, "net", CLONE_NEWNET);
	check_ns(4, "net", CLONE_NEWNET);
	check_ns(5, "uts", CLONE_NEWUTS);
	pid_t me = getpid();
	if (syscall(SYS_kcmp, me, me, KCMP_FILE, 3, 4) != 0)
		fail("fds 3 and 4 are not one open file");
	if (fcntl(3, F_GETFD) != 0 || fcntl(5, F_GETFD) != FD_CLOEXEC)
		fail("close-on-exec flags: fd 3 %d, fd 5 %d", fcntl(3, F_GETFD), fcntl(5, F_GETFD));
	return finish();
}
