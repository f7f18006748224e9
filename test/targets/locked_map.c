/* locked_map WORKDIR: holds a POSIX write lock on bytes 0-99 of a file it also has mapped
 * (MAP_SHARED) and open. Prints READY <pid>. SIGUSR2 drops the lock and marks the fd close-on-exec
 * (so a test can see compare notice both). On SIGUSR1 a child asks F_GETLK about bytes 0-99 and must be told the parent holds a
 * write lock there; the mapping must still be the file's. PASS or FAIL: lines. */
#include "target.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

static volatile sig_atomic_t drop;
static void on_usr2(int sig) { (void)sig; drop = 1; }

static int lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	return fcntl(fd, F_SETLK, &fl);
}

int main(int argc, char **argv)
{
	start(1);
	if (argc != 2)
		return 2;
	signal(SIGUSR2, on_usr2);
	char path[4096];
	snprintf(path, sizeof path, "%s/locked.dat", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 8192))
		die("locked.dat");
	char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	strcpy(map, "through the mapping");
	if (lock(fd, F_WRLCK))
		die("F_SETLK");
	printf("READY %d\n", getpid());
	sigset_t none;
	sigemptyset(&none);
	while (!got_usr1) {
		sigsuspend(&none);
		if (drop) {
			lock(fd, F_UNLCK);
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			drop = 0;
		}
	}
	pid_t self = getpid(), child = fork();
	if (child == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
		if (fcntl(fd, F_GETLK, &fl))
			_exit(3);
		_exit(fl.l_type == F_WRLCK && fl.l_pid == self ? 0 : 1);
	}
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("another process does not see our write lock on bytes 0-99 (child status 0x%x)", st);
	char buf[32] = { 0 };
	strcpy(map, "after the restore");
	if (pread(fd, buf, sizeof buf - 1, 0) < 0 || strcmp(buf, "after the restore"))
		fail("the mapping is not the file's: read \"%s\"", buf);
	return finish();
}
