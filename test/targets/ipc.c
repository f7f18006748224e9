/*
 * ipc own|host KEY MQNAME [notify]: every kind of IPC object, in an IPC namespace of its own (own: the
 * target unshares one first) or in the host's.
 *  shm A (key KEY): attached by the parent and the child, which shares it; shm B (private):
 *    attached by both, then IPC_RMID'd.
 *  msg queue Q (key KEY+1, 0640, msg_qbytes 9000): 4 messages of types 1, 2, 3, 7 and sizes 1,
 *    100, 3000, 0; msg queue P (IPC_PRIVATE, 0600): one message.
 *  sem set S (key KEY+2, 0660, 3 semaphores): values 3 0 7; the child adds 2 to semaphore 1 with
 *    SEM_UNDO (its adjustment -2), the parent takes 1 from semaphore 2 with SEM_UNDO.
 *  POSIX queue MQNAME (0640, maxmsg 8, msgsize 256): 5 messages of priorities 1 9 1 5 0; the
 *    child holds the same description (fork).
 *  A second child, made with CLONE_SYSVSEM, shares the parent's undo list: it takes 1 from
 *    semaphore 0 with SEM_UNDO before the dump and once more after the restore, then exits; the
 *    list being the parent's, its exit undoes nothing (semaphore 0 stays at 1).
 *  With notify, a second POSIX queue MQNAME-n, empty, with a notification registered (SIGUSR2);
 *  with notify-none, the same holding one message, with a SIGEV_NONE notification, checked after.
 * Prints READY <pid>; on SIGUSR1 the parent checks ids, keys, modes, contents and values, wakes
 * the child, which writes into A and B and exits, then sees the child's writes and its undo
 * applied (semaphore 1 back to 0), reads every message in order, removes everything. PASS / FAIL.
 */
#include "target.h"
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define PAGE 4096
static const long types[] = { 1, 2, 3, 7 };
static const size_t sizes[] = { 1, 100, 3000, 0 };
static const unsigned prios[] = { 1, 9, 1, 5, 0 };
static const char *mq_texts[] = { "low-one", "high", "low-two", "middle", "" };
/* the order mq_receive gives them: priority first, then arrival */
static const int mq_order[] = { 1, 3, 0, 2, 4 };

struct msg {
	long mtype;
	char text[4096];
};

static void fill_text(char *p, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(seed * 31 + i * 7);
}

static void check_perm(struct ipc_perm *p, key_t key, int mode, const char *what)
{
	if (p->__key != key)
		fail("%s: key 0x%x, expected 0x%x", what, p->__key, key);
	if ((p->mode & 0777) != mode)
		fail("%s: mode 0%o, expected 0%o", what, p->mode & 0777, mode);
}

int main(int argc, char **argv)
{
	start(1);
	if (argc != 4 && argc != 5)
		return 2;
	if (strcmp(argv[1], "own") == 0 && unshare(CLONE_NEWIPC))
		die("unshare(CLONE_NEWIPC)");
	key_t key = (key_t)strtol(argv[2], NULL, 0);
	const char *mqname = argv[3];

	int a = shmget(key, 2 * PAGE, IPC_CREAT | IPC_EXCL | 0640);
	int b = shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600);
	char *pa = a < 0 ? NULL : shmat(a, NULL, 0);
	char *pb = b < 0 ? NULL : shmat(b, NULL, 0);
	if (a < 0 || b < 0 || pa == (void *)-1 || pb == (void *)-1)
		die("shm");
	strcpy(pa, "segment-a");
	strcpy(pb, "segment-b");
	shmctl(b, IPC_RMID, NULL);

	int q = msgget(key + 1, IPC_CREAT | IPC_EXCL | 0640);
	int p = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (q < 0 || p < 0)
		die("msgget");
	struct msqid_ds qds;
	msgctl(q, IPC_STAT, &qds);
	qds.msg_qbytes = 9000;
	if (msgctl(q, IPC_SET, &qds))
		die("msgctl(IPC_SET)");
	static struct msg m;
	for (int i = 0; i < 4; i++) {
		m.mtype = types[i];
		fill_text(m.text, sizes[i], i);
		if (msgsnd(q, &m, sizes[i], IPC_NOWAIT))
			die("msgsnd");
	}
	m.mtype = 42;
	strcpy(m.text, "private");
	if (msgsnd(p, &m, 7, IPC_NOWAIT))
		die("msgsnd private");

	int s = semget(key + 2, 3, IPC_CREAT | IPC_EXCL | 0660);
	unsigned short vals[3] = { 3, 0, 7 };
	if (s < 0 || semctl(s, 0, SETALL, vals))
		die("semget");
	struct sembuf parent_op = { 2, -1, SEM_UNDO };
	if (semop(s, &parent_op, 1))
		die("semop parent");

	struct mq_attr attr = { .mq_maxmsg = 8, .mq_msgsize = 256 };
	mode_t old = umask(0);
	mqd_t mq = mq_open(mqname, O_CREAT | O_EXCL | O_RDWR, 0640, &attr);
	umask(old);
	if (mq == (mqd_t)-1)
		die("mq_open");
	for (int i = 0; i < 5; i++)
		if (mq_send(mq, mq_texts[i], strlen(mq_texts[i]), prios[i]))
			die("mq_send");

	char notified[300];
	snprintf(notified, sizeof notified, "%s-n", mqname);
	int none = argc == 5 && strcmp(argv[4], "notify-none") == 0;
	mqd_t n = (mqd_t)-1;
	if (argc == 5) {
		n = mq_open(notified, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
		struct sigevent ev = { .sigev_notify = none ? SIGEV_NONE : SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
		/* the message first: its arrival in the empty queue would fire (and drop) the notification */
		if (n == (mqd_t)-1 || (none && mq_send(n, "kept", 4, 3)) || mq_notify(n, &ev))
			die("mq_notify");
	}

	int ready[2];
	if (pipe(ready))
		die("pipe");
	pid_t child = fork();
	if (child == 0) {
		struct sembuf child_op = { 1, 2, SEM_UNDO };
		if (semop(s, &child_op, 1))
			_exit(3);
		close(ready[0]);
		if (write(ready[1], "k", 1) != 1)
			_exit(3);
		wait_usr1();
		strcpy(pa + 100, "child-was-here");
		strcpy(pb + 100, "child-in-b");
		_exit(0);
	}
	/* like fork, but sharing the parent's SEM_UNDO list */
	pid_t sharer = syscall(SYS_clone, CLONE_SYSVSEM | SIGCHLD, 0, 0, 0, 0);
	if (sharer == 0) {
		struct sembuf take = { 0, -1, SEM_UNDO };
		if (semop(s, &take, 1))
			_exit(3);
		if (write(ready[1], "k", 1) != 1)
			_exit(3);
		wait_usr1();
		_exit(semop(s, &take, 1) ? 4 : 0);
	}
	close(ready[1]);
	char k;
	if (read(ready[0], &k, 1) != 1 || read(ready[0], &k, 1) != 1)
		die("children's setup");
	close(ready[0]);
	printf("READY %d\n", getpid());
	wait_usr1();

	/* the same ids: each id still names an object with its key and mode */
	struct shmid_ds sds;
	if (shmctl(a, IPC_STAT, &sds))
		fail("shm id %d is gone", a);
	else
		check_perm(&sds.shm_perm, key, 0640, "shm A");
	if (strcmp(pa, "segment-a") || strcmp(pb, "segment-b"))
		fail("shm contents: \"%s\" \"%s\"", pa, pb);
	struct msqid_ds ds;
	if (msgctl(q, IPC_STAT, &ds))
		fail("msg queue id %d is gone", q);
	else {
		check_perm(&ds.msg_perm, key + 1, 0640, "msg queue Q");
		if (ds.msg_qbytes != 9000 || ds.msg_qnum != 4)
			fail("msg queue Q: msg_qbytes %lu, %lu messages; expected 9000, 4", ds.msg_qbytes, ds.msg_qnum);
	}
	if (msgctl(p, IPC_STAT, &ds))
		fail("msg queue id %d is gone", p);
	else
		check_perm(&ds.msg_perm, IPC_PRIVATE, 0600, "msg queue P");
	struct semid_ds semds;
	union { struct semid_ds *buf; } arg = { &semds };
	if (semctl(s, 0, IPC_STAT, arg))
		fail("sem set id %d is gone", s);
	else
		check_perm(&semds.sem_perm, key + 2, 0660, "sem set S");
	unsigned short now[3] = { 0 };
	semctl(s, 0, GETALL, now);
	if (now[0] != 2 || now[1] != 2 || now[2] != 6)
		fail("semaphore values %u %u %u, expected 2 2 6", now[0], now[1], now[2]);
	struct mq_attr got;
	if (mq_getattr(mq, &got) || got.mq_maxmsg != 8 || got.mq_msgsize != 256 || got.mq_curmsgs != 5)
		fail("POSIX queue: maxmsg %ld msgsize %ld, %ld messages; expected 8 256 5", got.mq_maxmsg, got.mq_msgsize, got.mq_curmsgs);
	struct stat st;
	if (fstat(mq, &st) || (st.st_mode & 0777) != 0640)
		fail("POSIX queue mode 0%o, expected 0640", st.st_mode & 0777);

	kill(child, SIGUSR1);
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("the child failed (0x%x)", status);
	if (strcmp(pa + 100, "child-was-here") || strcmp(pb + 100, "child-in-b"))
		fail("the child's writes are not seen: A \"%s\", B \"%s\"", pa + 100, pb + 100);
	kill(sharer, SIGUSR1);
	if (waitpid(sharer, &status, 0) != sharer || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("the CLONE_SYSVSEM child failed (0x%x)", status);
	int v0 = semctl(s, 0, GETVAL);
	if (v0 != 1)
		fail("semaphore 0 is %d after the CLONE_SYSVSEM child exited, expected 1 (its undo list is the parent's: nothing undone)", v0);
	int v1 = semctl(s, 1, GETVAL);
	if (v1 != 0)
		fail("semaphore 1 is %d after the child exited, expected 0 (its SEM_UNDO adjustment undone)", v1);

	for (int i = 0; i < 4; i++) {
		ssize_t n = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
		char want[4096];
		fill_text(want, sizes[i], i);
		if (n != (ssize_t)sizes[i] || m.mtype != types[i] || memcmp(m.text, want, sizes[i]))
			fail("message %d: type %ld, %zd bytes; expected type %ld, %zu bytes", i, m.mtype, n, types[i], sizes[i]);
	}
	if (msgrcv(p, &m, sizeof m.text, 42, IPC_NOWAIT) != 7 || memcmp(m.text, "private", 7))
		fail("the private queue's message");
	for (int i = 0; i < 5; i++) {
		char buf[256];
		unsigned prio = 99;
		struct timespec soon;
		clock_gettime(CLOCK_REALTIME, &soon);
		soon.tv_sec += 1;
		ssize_t n = mq_timedreceive(mq, buf, sizeof buf, &prio, &soon);
		int w = mq_order[i];
		if (n != (ssize_t)strlen(mq_texts[w]) || prio != prios[w] || memcmp(buf, mq_texts[w], n))
			fail("POSIX message %d: priority %u, %zd bytes; expected \"%s\" priority %u", i, prio, n, mq_texts[w], prios[w]);
	}

	shmctl(a, IPC_RMID, NULL);
	msgctl(q, IPC_RMID, NULL);
	msgctl(p, IPC_RMID, NULL);
	semctl(s, 0, IPC_RMID);
	if (none) {
		/* the registration is back: the queue's file says whose, and another registration is refused */
		char st[128] = "";
		ssize_t len = pread(n, st, sizeof st - 1, 0);
		char want[32];
		snprintf(want, sizeof want, "NOTIFY_PID:%d", getpid());
		struct sigevent ev = { .sigev_notify = SIGEV_NONE };
		if (len <= 0 || !strstr(st, "NOTIFY:1") || !strstr(st, want))
			fail("the SIGEV_NONE notification is gone: \"%s\"", st);
		if (mq_notify(n, &ev) == 0 || errno != EBUSY)
			fail("a second registration was not refused (EBUSY)");
		char buf[256];
		unsigned prio;
		if (mq_receive(n, buf, sizeof buf, &prio) != 4 || prio != 3 || memcmp(buf, "kept", 4))
			fail("the notified queue's message");
	}
	mq_unlink(mqname);
	if (argc == 5)
		mq_unlink(notified);
	return finish();
}
