/*
 * io_uring MODE: a process whose io_uring has kernel workers that never stop for ptrace, so a
 * dump must refuse it before seizing anything. Modes:
 *   sqpoll  a ring with IORING_SETUP_SQPOLL at fd 12 (an iou-sqp-<pid> thread polls it)
 *   worker  a plain ring at fd 12 with a read of an empty pipe in flight, forced async, so an
 *           iou-wrk-<pid> thread blocks in it
 *   closed  an SQPOLL ring whose fd was closed: the mapped rings keep it (and iou-sqp) alive
 *   child   a child process holds an SQPOLL ring; this process holds none
 * Protocol as target.h: READY <pid>; on SIGUSR1 the ring still works (sqpoll: a NOP completes;
 * worker: the pending read completes once the pipe is written), no thread of ours is traced or
 * stopped (child: the child neither), then PASS.
 */
#include "target.h"
#include <dirent.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define RING_FD 12

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array;
	struct io_uring_sqe *sqes;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
};

static void setup_ring(struct ring *r, unsigned flags)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = flags;
	p.sq_thread_idle = 10; /* ms: the poller sleeps soon, so it costs no CPU meanwhile */
	int fd = (int)syscall(SYS_io_uring_setup, 4, &p);
	if (fd < 0)
		die("io_uring_setup");
	if (dup2(fd, RING_FD) != RING_FD)
		die("dup2");
	close(fd);
	r->fd = RING_FD;
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQ_RING);
	char *cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		       IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		die("mmap io_uring");
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
}

static void submit(struct ring *r, const struct io_uring_sqe *sqe)
{
	unsigned tail = *r->sq_tail, i = tail & *r->sq_mask;
	r->sqes[i] = *sqe;
	r->sq_array[i] = i;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	/* SQPOLL: wakes the poller if it sleeps; plain: submits */
	if (syscall(SYS_io_uring_enter, r->fd, 1, 0, IORING_ENTER_SQ_WAKEUP, NULL, 0) < 0)
		die("io_uring_enter submit");
}

/* Waits for one completion; returns its result. */
static int complete(struct ring *r, unsigned long long user_data)
{
	if (syscall(SYS_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		fail("io_uring_enter getevents: %s", strerror(errno));
		return -1;
	}
	unsigned head = *r->cq_head;
	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
		fail("no completion after io_uring_enter");
		return -1;
	}
	struct io_uring_cqe cqe = r->cqes[head & *r->cq_mask];
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	if (cqe.user_data != user_data)
		fail("completion for %llu, expected %llu", (unsigned long long)cqe.user_data, user_data);
	return cqe.res;
}

/* No thread of pid is traced or stopped: amber left it as it was. */
static void check_untouched(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d) {
		fail("opendir %s: %s", path, strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char file[400], line[256];
		snprintf(file, sizeof file, "%s/%s/status", path, e->d_name);
		FILE *f = fopen(file, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			if (!strncmp(line, "TracerPid:", 10) && atoi(line + 10) != 0)
				fail("thread %s of pid %d is traced by %d", e->d_name, pid, atoi(line + 10));
			char state = 0;
			if (sscanf(line, "State: %c", &state) == 1 && (state == 't' || state == 'T'))
				fail("thread %s of pid %d is stopped (%c)", e->d_name, pid, state);
		}
		fclose(f);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "sqpoll";
	start(1);
	struct ring r;
	int pipefd[2] = { -1, -1 };
	pid_t child = 0;
	if (!strcmp(mode, "sqpoll") || !strcmp(mode, "closed")) {
		setup_ring(&r, IORING_SETUP_SQPOLL);
		if (!strcmp(mode, "closed"))
			close(RING_FD);
	} else if (!strcmp(mode, "worker")) {
		setup_ring(&r, 0);
		if (pipe(pipefd))
			die("pipe");
		static char buf[16];
		struct io_uring_sqe sqe;
		memset(&sqe, 0, sizeof sqe);
		sqe.opcode = IORING_OP_READ;
		sqe.flags = IOSQE_ASYNC;
		sqe.fd = pipefd[0];
		sqe.addr = (unsigned long)buf;
		sqe.len = sizeof buf;
		sqe.user_data = 7;
		submit(&r, &sqe);
	} else if (!strcmp(mode, "child")) {
		int ready[2];
		if (pipe(ready))
			die("pipe");
		child = fork();
		if (child < 0)
			die("fork");
		if (child == 0) {
			close(ready[0]);
			setup_ring(&r, IORING_SETUP_SQPOLL);
			if (write(ready[1], "x", 1) != 1)
				_exit(2);
			for (;;)
				pause();
		}
		close(ready[1]);
		char c;
		if (read(ready[0], &c, 1) != 1)
			die("child setup");
		close(ready[0]);
	} else {
		errno = EINVAL;
		die(mode);
	}
	/* the kernel starts its workers asynchronously, and a worker names itself iou-* once it
	 * runs: READY only once one shows under that name */
	char task_dir[64];
	snprintf(task_dir, sizeof task_dir, "/proc/%d/task", child ? child : getpid());
	for (int tries = 0;; tries++) {
		int workers = 0;
		DIR *d = opendir(task_dir);
		if (!d)
			die("opendir task");
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char file[400], comm[32] = "";
			snprintf(file, sizeof file, "%s/%s/comm", task_dir, e->d_name);
			FILE *f = fopen(file, "r");
			if (f) {
				if (!fgets(comm, sizeof comm, f))
					comm[0] = 0;
				fclose(f);
			}
			workers += !strncmp(comm, "iou-", 4);
		}
		closedir(d);
		if (workers > 0)
			break;
		if (tries > 1000) {
			errno = ETIMEDOUT;
			die("io_uring worker did not appear");
		}
		usleep(1000);
	}

	ready_and_wait();

	check_untouched(getpid());
	if (!strcmp(mode, "sqpoll")) {
		struct io_uring_sqe sqe;
		memset(&sqe, 0, sizeof sqe);
		sqe.opcode = IORING_OP_NOP;
		sqe.user_data = 42;
		submit(&r, &sqe);
		int res = complete(&r, 42);
		if (res != 0)
			fail("NOP completed with %d", res);
	} else if (!strcmp(mode, "worker")) {
		if (write(pipefd[1], "hello", 5) != 5)
			fail("write pipe: %s", strerror(errno));
		int res = complete(&r, 7);
		if (res != 5)
			fail("pending read completed with %d, expected 5", res);
	} else if (child) {
		check_untouched(child);
		kill(child, SIGKILL);
		int st;
		if (waitpid(child, &st, 0) != child || !WIFSIGNALED(st))
			fail("child %d did not end by our SIGKILL (status %#x)", child, st);
	}
	return finish();
}
