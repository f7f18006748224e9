/*
 * unix_socks: a parent and a child holding unix sockets of every kind the unix plugin restores,
 * with data queued in them; prints "READY <pid>", waits for SIGUSR1, then checks every socket
 * (queued data byte for byte, record boundaries, names, options, shutdown state, a round trip on
 * every connection, a connection accepted only now) and prints PASS or FAIL: <what> lines,
 * exiting 0 or 1. The child checks its own sockets when the parent tells it to, over a socket.
 *
 * Usage: unix_socks WORKDIR
 */
#include "target.h"
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define STREAM_BYTES (10 * 1024)
#define MODE 0640

static char workdir[3800];
static char abstract_name[64];
static int sp_a, sp_b, dg_a, dg_b, seq_a, seq_b, cross_p, ctl_p, lst, c1, s1, c2, s3, abs_srv, abs_snd, rel, gone, unbound,
	sh_a, sh_b, orphan, dsrv, dcli, fl_a, fl_b, fls_a, fls_b, fl_pipe_w, fl_sock_keep;
static pid_t child;
static volatile sig_atomic_t winches;

static void on_winch(int sig) { (void)sig; winches++; }

static const char *in_workdir(const char *name)
{
	static char path[4][4096];
	static int which;
	which = (which + 1) % 4;
	snprintf(path[which], sizeof path[which], "%s/%s", workdir, name);
	return path[which];
}

static unsigned char stream_byte(int i) { return (unsigned char)(i * 13 + 5); }

static struct sockaddr_un addr_of(const char *name, socklen_t *len, int abstract)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	if (abstract) {
		memcpy(a.sun_path + 1, name, n);
		*len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	} else {
		memcpy(a.sun_path, name, n + 1);
		*len = offsetof(struct sockaddr_un, sun_path) + n + 1;
	}
	return a;
}

static int bound(int type, const char *name, int abstract)
{
	int s = socket(AF_UNIX, type, 0);
	socklen_t len;
	struct sockaddr_un a = addr_of(name, &len, abstract);
	if (s < 0 || bind(s, (struct sockaddr *)&a, len))
		die(name);
	return s;
}

static int connected(int type, const char *name, int abstract)
{
	int s = socket(AF_UNIX, type, 0);
	socklen_t len;
	struct sockaddr_un a = addr_of(name, &len, abstract);
	if (s < 0 || connect(s, (struct sockaddr *)&a, len))
		die(name);
	return s;
}

static void pair(int type, int *a, int *b)
{
	int sv[2];
	if (socketpair(AF_UNIX, type, 0, sv))
		die("socketpair");
	*a = sv[0];
	*b = sv[1];
}

static void put(int s, const void *data, size_t n, const char *what)
{
	if (send(s, data, n, MSG_NOSIGNAL) != (ssize_t)n)
		die(what);
}

static void puts_(int s, const char *text) { put(s, text, strlen(text), text); }

static void send_fds(int s, const char *text, int fd1, int fd2)
{
	int fds[2] = { fd1, fd2 };
	int n = fd2 < 0 ? 1 : 2;
	char cbuf[CMSG_SPACE(sizeof fds)];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = { (void *)text, strlen(text) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	if (sendmsg(s, &mh, 0) != (ssize_t)strlen(text))
		die("sendmsg SCM_RIGHTS");
}

/* One record with the fds that came with it; returns how many (at most 2). */
static int recv_fds(int s, char *buf, size_t room, ssize_t *len, int *fds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { buf, room };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	*len = recvmsg(s, &mh, MSG_DONTWAIT);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (*len < 0 || !cm || cm->cmsg_type != SCM_RIGHTS)
		return 0;
	int n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
	return n;
}

/* One recv, which must bring exactly `want` (a record, or stream data that fits). */
static void expect(int s, const char *want, const char *what)
{
	char buf[4096];
	ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
	if (n < 0)
		fail("%s: recv: %s (wanted \"%s\")", what, strerror(errno), want);
	else if ((size_t)n != strlen(want) || memcmp(buf, want, n))
		fail("%s: got \"%.*s\" (%zd bytes), wanted \"%s\"", what, (int)n, buf, n, want);
}

static void expect_empty(int s, const char *what)
{
	char c;
	ssize_t n = recv(s, &c, 1, MSG_DONTWAIT);
	if (!(n < 0 && errno == EAGAIN))
		fail("%s: more queued than dumped (recv %zd, %s)", what, n, n < 0 ? strerror(errno) : "data");
}

static void round_trip(int a, int b, const char *what)
{
	char m1[64], m2[64];
	snprintf(m1, sizeof m1, "ping %s", what);
	snprintf(m2, sizeof m2, "pong %s", what);
	puts_(a, m1);
	expect(b, m1, what);
	puts_(b, m2);
	expect(a, m2, what);
}

static void check_name(int s, const char *want, int abstract, const char *what)
{
	struct sockaddr_un a;
	socklen_t len = sizeof a;
	if (getsockname(s, (struct sockaddr *)&a, &len)) {
		fail("%s: getsockname: %s", what, strerror(errno));
		return;
	}
	socklen_t want_len;
	struct sockaddr_un w = addr_of(want, &want_len, abstract);
	if (!*want)
		want_len = offsetof(struct sockaddr_un, sun_path);
	if (len != want_len || memcmp(&a, &w, len))
		fail("%s: bound to \"%s\" (%u bytes), not \"%s\"", what, a.sun_path[0] ? a.sun_path : a.sun_path + 1, len, want);
}

static int opt(int s, int name)
{
	int v = -100;
	socklen_t len = sizeof v;
	getsockopt(s, SOL_SOCKET, name, &v, &len);
	return v;
}

/* The child: a client of the parent's listener, one end of a cross-process pair, and a control
 * socket it waits on (blocked in recv) until the parent says go. */
static int child_main(int cross, int ctl, int c3)
{
	char buf[64];
	ssize_t n = recv(ctl, buf, sizeof buf, 0);
	if (n != 2 || memcmp(buf, "go", 2))
		fail("child: control message %zd bytes", n);
	expect(cross, "to-child", "child: cross-process queue");
	expect(c3, "to-c3", "child: accepted connection's queue");
	check_name(c3, "", 0, "child: client end (unbound)");
	struct sockaddr_un peer;
	socklen_t plen = sizeof peer;
	if (getpeername(c3, (struct sockaddr *)&peer, &plen) || strcmp(peer.sun_path, in_workdir("listen.sock")))
		fail("child: client's peer name is not the listener's");
	puts_(c3, "c3-reply");
	char verdict[256];
	snprintf(verdict, sizeof verdict, failures ? "child-failed" : "child-ok");
	puts_(cross, verdict);
	return failures ? 1 : 0;
}

static void setup(void)
{
	if (chdir(workdir))
		die("chdir");
	pair(SOCK_STREAM, &sp_a, &sp_b);
	int sndbuf = 96 * 1024, rcvbuf = 160 * 1024, lowat = 3, peek = 2, on = 1;
	setsockopt(sp_a, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	setsockopt(sp_b, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	setsockopt(sp_b, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
	unsigned char big[STREAM_BYTES];
	for (int i = 0; i < STREAM_BYTES; i++)
		big[i] = stream_byte(i);
	put(sp_a, big, sizeof big, "stream data");
	puts_(sp_b, "back-to-a");

	pair(SOCK_DGRAM, &dg_a, &dg_b);
	setsockopt(dg_b, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
	puts_(dg_a, "d1");
	puts_(dg_a, "dgram-two");
	put(dg_a, "", 0, "empty datagram");
	fcntl(dg_b, F_SETFL, O_NONBLOCK);

	pair(SOCK_SEQPACKET, &seq_a, &seq_b);
	puts_(seq_a, "s1");
	puts_(seq_a, "seq-two");
	setsockopt(seq_b, SOL_SOCKET, SO_PASSSEC, &on, sizeof on);
	setsockopt(seq_a, SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof peek);

	int cross_c, ctl_c;
	pair(SOCK_STREAM, &cross_p, &cross_c);
	pair(SOCK_DGRAM, &ctl_p, &ctl_c);
	puts_(cross_p, "to-child");
	puts_(cross_c, "to-parent");

	lst = bound(SOCK_STREAM, in_workdir("listen.sock"), 0);
	chmod(in_workdir("listen.sock"), MODE);
	if (listen(lst, 5))
		die("listen");
	c1 = connected(SOCK_STREAM, in_workdir("listen.sock"), 0);
	s1 = accept(lst, NULL, NULL);
	int c3 = connected(SOCK_STREAM, in_workdir("listen.sock"), 0);
	s3 = accept(lst, NULL, NULL);
	c2 = connected(SOCK_STREAM, in_workdir("listen.sock"), 0); /* stays queued, not accepted */
	if (s1 < 0 || s3 < 0)
		die("accept");
	puts_(c1, "hello-accepted");
	puts_(s3, "to-c3");

	abs_srv = bound(SOCK_DGRAM, abstract_name, 1);
	abs_snd = socket(AF_UNIX, SOCK_DGRAM, 0);
	socklen_t alen;
	struct sockaddr_un a = addr_of(abstract_name, &alen, 1);
	if (sendto(abs_snd, "abs-1", 5, 0, (struct sockaddr *)&a, alen) != 5 || sendto(abs_snd, "abs-two", 7, 0, (struct sockaddr *)&a, alen) != 7)
		die("sendto abstract");

	/* SIGIO-driven: owner and signal of the description, O_ASYNC; the handler counts the signals:
	 * none may come of the restore refilling the queue or connecting */
	signal(SIGWINCH, on_winch);
	if (fcntl(abs_srv, F_SETOWN, getpid()) || fcntl(abs_srv, F_SETSIG, SIGWINCH) || fcntl(abs_srv, F_SETFL, O_ASYNC))
		die("O_ASYNC");

	rel = bound(SOCK_DGRAM, "rel.sock", 0);
	gone = bound(SOCK_STREAM, in_workdir("gone.sock"), 0);
	unlink(in_workdir("gone.sock"));
	unbound = socket(AF_UNIX, SOCK_STREAM, 0);

	pair(SOCK_STREAM, &sh_a, &sh_b);
	puts_(sh_a, "last-words");
	shutdown(sh_a, SHUT_WR);

	int orphan_peer;
	pair(SOCK_STREAM, &orphan, &orphan_peer);
	puts_(orphan_peer, "orphan");
	close(orphan_peer);

	dsrv = bound(SOCK_DGRAM, in_workdir("dgram.sock"), 0);
	dcli = connected(SOCK_DGRAM, in_workdir("dgram.sock"), 0);
	puts_(dcli, "via-connect");

	/* files in flight: a regular file at offset 3 and a pipe's read end, held by no fd any more,
	 * in a datagram; another regular file in a stream */
	pair(SOCK_DGRAM, &fl_a, &fl_b);
	int file = open(in_workdir("inflight.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file < 0 || write(file, "in-flight-file", 14) != 14 || lseek(file, 3, SEEK_SET) != 3)
		die("in-flight file");
	int p[2];
	if (pipe(p) || write(p[1], "pipe-in-flight", 14) != 14)
		die("pipe");
	fl_pipe_w = p[1];
	send_fds(fl_a, "with-fds", file, p[0]);
	close(file);
	close(p[0]);
	pair(SOCK_STREAM, &fls_a, &fls_b);
	int file2 = open(in_workdir("inflight2.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file2 < 0 || write(file2, "second", 6) != 6 || lseek(file2, 0, SEEK_SET))
		die("second in-flight file");
	send_fds(fls_a, "stream-fd", file2, -1);
	close(file2);
	puts_(fls_a, "after-fd");
	/* a socket in flight: one end of a pair, with data queued to it, held by no fd any more */
	int fl_sock;
	pair(SOCK_STREAM, &fl_sock, &fl_sock_keep);
	puts_(fl_sock_keep, "to-the-socket-in-flight");
	send_fds(fl_a, "socket-fd", fl_sock, -1);
	close(fl_sock);
	/* a datagram socket in flight, connected to a named one: it is connected again only by its
	 * own post-open step, which the queue carrying it must run */
	int fl_dg = connected(SOCK_DGRAM, in_workdir("dgram.sock"), 0);
	send_fds(fl_a, "dgram-fd", fl_dg, -1);
	close(fl_dg);

	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		int keep[] = { cross_c, ctl_c, c3 };
		for (int fd = 3; fd < 1024; fd++) {
			int k = 0;
			for (unsigned i = 0; i < sizeof keep / sizeof keep[0]; i++)
				k |= keep[i] == fd;
			if (!k)
				close(fd);
		}
		_exit(child_main(cross_c, ctl_c, c3));
	}
	close(cross_c);
	close(ctl_c);
	close(c3);
}

static void check(void)
{
	unsigned char big[STREAM_BYTES + 16];
	size_t got = 0;
	while (got < sizeof big) {
		ssize_t n = recv(sp_b, big + got, sizeof big - got, MSG_DONTWAIT);
		if (n <= 0)
			break;
		got += n;
	}
	if (got != STREAM_BYTES)
		fail("stream pair: %zu bytes queued, not %d", got, STREAM_BYTES);
	for (size_t i = 0; i < got; i++)
		if (big[i] != stream_byte(i)) {
			fail("stream pair: byte %zu differs", i);
			break;
		}
	expect(sp_a, "back-to-a", "stream pair, other direction");
	if (opt(sp_a, SO_SNDBUF) != 2 * 96 * 1024)
		fail("SO_SNDBUF %d", opt(sp_a, SO_SNDBUF));
	if (opt(sp_b, SO_RCVBUF) != 2 * 160 * 1024)
		fail("SO_RCVBUF %d", opt(sp_b, SO_RCVBUF));
	if (opt(sp_b, SO_RCVLOWAT) != 3)
		fail("SO_RCVLOWAT %d", opt(sp_b, SO_RCVLOWAT));
	round_trip(sp_a, sp_b, "stream pair");

	/* datagrams: boundaries, an empty one, credentials attached */
	char buf[64], cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { buf, sizeof buf };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	ssize_t n = recvmsg(dg_b, &mh, 0);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (n != 2 || memcmp(buf, "d1", 2))
		fail("dgram pair: first record %zd bytes", n);
	if (!cm || cm->cmsg_type != SCM_CREDENTIALS)
		fail("dgram pair: no credentials with SO_PASSCRED");
	else {
		struct ucred *uc = (struct ucred *)CMSG_DATA(cm);
		if (uc->pid != getpid() || uc->uid != getuid())
			fail("dgram pair: credentials pid %d uid %d", uc->pid, uc->uid);
	}
	expect(dg_b, "dgram-two", "dgram pair, second record");
	expect(dg_b, "", "dgram pair, empty record");
	expect_empty(dg_b, "dgram pair");
	if (!(fcntl(dg_b, F_GETFL) & O_NONBLOCK))
		fail("dgram pair: O_NONBLOCK lost");
	if (opt(dg_b, SO_PASSCRED) != 1)
		fail("SO_PASSCRED lost");
	round_trip(dg_a, dg_b, "dgram pair");

	if (opt(seq_b, SO_PASSSEC) != 1)
		fail("SO_PASSSEC lost");
	if (opt(seq_a, SO_PEEK_OFF) != 2)
		fail("SO_PEEK_OFF %d", opt(seq_a, SO_PEEK_OFF));
	expect(seq_b, "s1", "seqpacket pair, first record");
	expect(seq_b, "seq-two", "seqpacket pair, second record");
	int off = -1;
	setsockopt(seq_a, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off);
	round_trip(seq_a, seq_b, "seqpacket pair");

	/* the listener: its name and mode, the accepted connection, the one accepted only now */
	struct stat st;
	if (stat(in_workdir("listen.sock"), &st) || !S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != MODE)
		fail("listener's socket file: mode 0%o", st.st_mode & 07777);
	check_name(lst, in_workdir("listen.sock"), 0, "listener");
	check_name(s1, in_workdir("listen.sock"), 0, "accepted socket");
	expect(s1, "hello-accepted", "accepted connection's queue");
	round_trip(c1, s1, "accepted connection");
	fcntl(lst, F_SETFL, O_NONBLOCK);
	int s2 = accept(lst, NULL, NULL);
	if (s2 < 0)
		fail("the queued connection cannot be accepted: %s", strerror(errno));
	else {
		round_trip(c2, s2, "connection accepted after restore");
		check_name(s2, in_workdir("listen.sock"), 0, "socket accepted after restore");
	}
	int s4 = accept(lst, NULL, NULL);
	if (s4 >= 0 || errno != EAGAIN)
		fail("a second queued connection appeared");
	int late = connected(SOCK_STREAM, in_workdir("listen.sock"), 0);
	int s5 = accept(lst, NULL, NULL);
	if (s5 < 0)
		fail("a new connection is not accepted: %s", strerror(errno));
	round_trip(late, s5, "new connection to the listener");

	if (winches)
		fail("O_ASYNC socket: %d signal(s) since the dump", (int)winches);
	check_name(abs_srv, abstract_name, 1, "abstract socket");
	if (fcntl(abs_srv, F_GETOWN) != getpid() || fcntl(abs_srv, F_GETSIG) != SIGWINCH || !(fcntl(abs_srv, F_GETFL) & O_ASYNC))
		fail("O_ASYNC socket: owner %d, signal %d, flags 0%o", fcntl(abs_srv, F_GETOWN), fcntl(abs_srv, F_GETSIG), fcntl(abs_srv, F_GETFL));
	expect(abs_srv, "abs-1", "abstract socket, first record");
	expect(abs_srv, "abs-two", "abstract socket, second record");
	check_name(rel, "rel.sock", 0, "relative bind");
	if (stat(in_workdir("rel.sock"), &st) || !S_ISSOCK(st.st_mode))
		fail("relative bind's socket file is missing");
	check_name(gone, in_workdir("gone.sock"), 0, "bound path since deleted");
	if (stat(in_workdir("gone.sock"), &st) == 0)
		fail("the deleted bound path exists again");
	check_name(unbound, "", 0, "unbound socket");

	expect(sh_b, "last-words", "shut-down pair's last data");
	if (recv(sh_b, buf, sizeof buf, MSG_DONTWAIT) != 0)
		fail("shut-down pair: no end of file after the data");
	if (send(sh_a, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
		fail("shut-down pair: the shut direction sends");
	puts_(sh_b, "still-open");
	expect(sh_a, "still-open", "shut-down pair, open direction");

	expect(orphan, "orphan", "socket whose peer closed: its data");
	if (recv(orphan, buf, sizeof buf, MSG_DONTWAIT) != 0)
		fail("socket whose peer closed: no end of file");

	expect(dsrv, "via-connect", "connected datagram socket's queue");
	puts_(dcli, "after");
	expect(dsrv, "after", "connected datagram socket after restore");

	/* files in flight */
	int fds[2];
	ssize_t len;
	int nfd = recv_fds(fl_b, buf, sizeof buf, &len, fds);
	if (len != 8 || memcmp(buf, "with-fds", 8) || nfd != 2)
		fail("in-flight files: record of %zd bytes with %d fds", len, nfd);
	else {
		char fb[32] = { 0 };
		if (read(fds[0], fb, sizeof fb - 1) != 11 || strcmp(fb, "flight-file"))
			fail("in-flight file: read \"%s\" from its offset", fb);
		memset(fb, 0, sizeof fb);
		if (write(fl_pipe_w, "+more", 5) != 5 || read(fds[1], fb, sizeof fb - 1) != 19 || strcmp(fb, "pipe-in-flight+more"))
			fail("in-flight pipe end: read \"%s\"", fb);
	}
	nfd = recv_fds(fl_b, buf, sizeof buf, &len, fds);
	if (len != 9 || memcmp(buf, "socket-fd", 9) || nfd != 1)
		fail("socket in flight: record of %zd bytes with %d fds", len, nfd);
	else {
		expect(fds[0], "to-the-socket-in-flight", "socket in flight: its own queue");
		round_trip(fds[0], fl_sock_keep, "socket that was in flight");
	}
	nfd = recv_fds(fl_b, buf, sizeof buf, &len, fds);
	if (len != 8 || memcmp(buf, "dgram-fd", 8) || nfd != 1)
		fail("datagram socket in flight: record of %zd bytes with %d fds", len, nfd);
	else if (send(fds[0], "from-flight", 11, MSG_NOSIGNAL) != 11)
		fail("datagram socket in flight: send without an address: %s", strerror(errno));
	else
		expect(dsrv, "from-flight", "datagram socket in flight, still connected");
	nfd = recv_fds(fls_b, buf, sizeof buf, &len, fds);
	if (len != 9 || memcmp(buf, "stream-fd", 9) || nfd != 1)
		fail("in-flight file in a stream: %zd bytes with %d fds", len, nfd);
	else {
		char fb[16] = { 0 };
		if (read(fds[0], fb, sizeof fb - 1) != 6 || strcmp(fb, "second"))
			fail("in-flight file in a stream: read \"%s\"", fb);
	}
	expect(fls_b, "after-fd", "stream data after the in-flight file");

	/* the child */
	expect(cross_p, "to-parent", "cross-process queue");
	puts_(ctl_p, "go");
	struct timeval tv = { 5, 0 };
	setsockopt(cross_p, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(s3, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	n = recv(s3, buf, sizeof buf, 0);
	if (n != 8 || memcmp(buf, "c3-reply", 8))
		fail("child's connection to the listener: reply %zd bytes", n);
	n = recv(cross_p, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	if (strcmp(buf, "child-ok"))
		fail("child says \"%s\"", buf);
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("child did not exit 0");
}

int main(int argc, char **argv)
{
	start(0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
		return 2;
	}
	snprintf(workdir, sizeof workdir, "%s", argv[1]);
	snprintf(abstract_name, sizeof abstract_name, "amber-unix-%d", getpid());
	setup();
	pid_t pid = getpid();
	printf("READY %d\n", pid);
	while (!got_usr1)
		usleep(1000);
	if (getpid() != pid)
		fail("pid changed");
	check();
	return finish();
}
