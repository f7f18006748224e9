/* Terminals: the root opens two pty pairs. A is canonical with its own termios and window size;
 * B is raw with packet mode on. Bytes are queued both ways on both. A child in its own session
 * takes A's slave as its controlling terminal, opens /dev/tty and makes its own child's group the
 * foreground group. After SIGUSR1 the root checks every setting, reads exactly the queued bytes,
 * makes a round trip both ways, lets the child check its terminal, and types A's VINTR: the
 * foreground group (and only it) gets SIGINT. */
#include "target.h"
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

struct pair {
	int master, slave;
	char name[64];
	struct termios t;
	struct winsize ws;
};

static int report[2]; /* children -> root */
static struct pair a, b;
static int as_user; /* ttys user: started unprivileged, A's slave keeps its owner (only its mode changes) */

static void open_pair(struct pair *p)
{
	p->master = posix_openpt(O_RDWR | O_NOCTTY);
	if (p->master < 0 || grantpt(p->master) || unlockpt(p->master))
		die("posix_openpt");
	if (ptsname_r(p->master, p->name, sizeof p->name))
		die("ptsname_r");
	p->slave = open(p->name, O_RDWR | O_NOCTTY);
	if (p->slave < 0)
		die("open slave");
}

static void set_pair(struct pair *p)
{
	if (tcsetattr(p->slave, TCSANOW, &p->t) || ioctl(p->master, TIOCSWINSZ, &p->ws))
		die("tcsetattr");
	if (tcgetattr(p->slave, &p->t)) /* what the kernel kept */
		die("tcgetattr");
}

static void put(int fd, const char *s, size_t n)
{
	if (write(fd, s, n) != (ssize_t)n)
		die("write");
}

/* Exactly want, within a second, and then (if last) nothing more to read. */
static void expect_bytes(int fd, const char *want, size_t n, const char *what, int last)
{
	char buf[256];
	size_t got = 0;
	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 1000) != 1) {
			fail("%s: %zu of %zu bytes, then nothing", what, got, n);
			return;
		}
		ssize_t r = read(fd, buf + got, sizeof buf - got);
		if (r <= 0) {
			fail("%s: read %zd: %s", what, r, strerror(errno));
			return;
		}
		got += r;
	}
	if (got != n || memcmp(buf, want, n))
		fail("%s: got %zu bytes \"%.*s\"", what, got, (int)got, buf);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (last && poll(&pfd, 1, 50) == 1 && (pfd.revents & POLLIN))
		fail("%s: more bytes than queued", what);
}

#define expect(fd, want, n, what) expect_bytes(fd, want, n, what, 1)

static void same_termios(const struct pair *p, const char *which)
{
	struct termios now;
	struct winsize ws;
	if (tcgetattr(p->slave, &now) || ioctl(p->master, TIOCGWINSZ, &ws))
		fail("%s: tcgetattr: %s", which, strerror(errno));
	if (now.c_iflag != p->t.c_iflag || now.c_oflag != p->t.c_oflag || now.c_cflag != p->t.c_cflag || now.c_lflag != p->t.c_lflag)
		fail("%s: termios flags %o %o %o %o, were %o %o %o %o", which, now.c_iflag, now.c_oflag, now.c_cflag, now.c_lflag,
		     p->t.c_iflag, p->t.c_oflag, p->t.c_cflag, p->t.c_lflag);
	if (memcmp(now.c_cc, p->t.c_cc, NCCS))
		fail("%s: control characters differ", which);
	if (cfgetispeed(&now) != cfgetispeed(&p->t) || cfgetospeed(&now) != cfgetospeed(&p->t))
		fail("%s: speed %u, was %u", which, cfgetospeed(&now), cfgetospeed(&p->t));
	if (ws.ws_row != p->ws.ws_row || ws.ws_col != p->ws.ws_col || ws.ws_xpixel != p->ws.ws_xpixel || ws.ws_ypixel != p->ws.ws_ypixel)
		fail("%s: window %ux%u, was %ux%u", which, ws.ws_row, ws.ws_col, p->ws.ws_row, p->ws.ws_col);
	char name[64];
	if (ptsname_r(p->master, name, sizeof name) || strcmp(name, p->name))
		fail("%s: master's slave is %s, was %s", which, name, p->name);
	char *tn = ttyname(p->slave);
	if (!tn || strcmp(tn, p->name))
		fail("%s: slave is %s, was %s", which, tn ? tn : "?", p->name);
}

static volatile sig_atomic_t got_int, got_hup;
static void on_int(int sig) { (void)sig; got_int = 1; }
static void on_hup(int sig) { (void)sig; got_hup = 1; }

/* In the foreground group: waits for the SIGINT the terminal sends, says so. */
static void foreground_child(void)
{
	signal(SIGINT, on_int);
	sigset_t none;
	sigemptyset(&none);
	while (!got_int)
		sigsuspend(&none);
	put(report[1], "I", 1);
	_exit(0);
}

/* Session leader with A's slave as controlling terminal and a child's group in the foreground. */
static void session_child(const char *slave_name)
{
	close(report[0]);
	/* only the root holds the pairs: A's master closing there is the last close */
	close(a.master);
	close(a.slave);
	close(b.master);
	close(b.slave);
	signal(SIGHUP, on_hup);
	if (setsid() < 0)
		die("setsid");
	int ctty = open(slave_name, O_RDWR | O_NOCTTY);
	if (ctty < 0 || ioctl(ctty, TIOCSCTTY, 0))
		die("TIOCSCTTY");
	int devtty = open("/dev/tty", O_RDWR);
	if (devtty < 0)
		die("open /dev/tty");
	pid_t fg = fork();
	if (fg < 0)
		die("fork");
	if (fg == 0) {
		setpgid(0, 0);
		foreground_child();
	}
	setpgid(fg, fg);
	if (tcsetpgrp(ctty, fg))
		die("tcsetpgrp");
	put(report[1], "R", 1);
	wait_usr1();

	char msg[200] = "C ok";
	struct stat st;
	if (tcgetsid(ctty) != getpid())
		snprintf(msg, sizeof msg, "C session of terminal %d, not %d", tcgetsid(ctty), getpid());
	else if (tcgetpgrp(ctty) != fg)
		snprintf(msg, sizeof msg, "C foreground group %d, not %d", tcgetpgrp(ctty), fg);
	else if (fstat(devtty, &st) || st.st_rdev != makedev(5, 0))
		snprintf(msg, sizeof msg, "C /dev/tty fd is no longer /dev/tty");
	else if (tcgetpgrp(devtty) != fg)
		snprintf(msg, sizeof msg, "C /dev/tty reaches a terminal with foreground %d", tcgetpgrp(devtty));
	put(report[1], msg, strlen(msg));
	int status;
	if (waitpid(fg, &status, 0) != fg || !WIFEXITED(status) || WEXITSTATUS(status))
		put(report[1], "X", 1);
	/* the master's last close hangs the terminal up: its session leader gets SIGHUP */
	sigset_t none;
	sigemptyset(&none);
	while (!got_hup)
		sigsuspend(&none);
	put(report[1], "H", 1);
	_exit(0);
}

/* ttys outside: a child in its own session keeps only a slave; its master stays with the root,
 * outside a dump of the child. After SIGUSR1 the child still answers through the terminal.
 * ttys outside-ctty: the child makes the slave its controlling terminal and closes its fd. */
static int outside(int ctty_only)
{
	struct pair p;
	open_pair(&p);
	tcgetattr(p.slave, &p.t);
	cfmakeraw(&p.t);
	set_pair(&p);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		setsid();
		close(p.master);
		if (ctty_only) {
			if (ioctl(p.slave, TIOCSCTTY, 0))
				die("TIOCSCTTY");
			close(p.slave);
			pause();
			_exit(0);
		}
		char c;
		while (read(p.slave, &c, 1) == 1) {
			c ^= 0x20;
			put(p.slave, &c, 1);
		}
		_exit(0);
	}
	close(p.slave);
	ready_and_wait();
	if (ctty_only) {
		if (kill(child, 0))
			fail("the child is gone");
	} else {
		put(p.master, "hi", 2);
		expect_bytes(p.master, "HI", 2, "the child answers through its terminal", 1);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return finish();
}

/* ttys closed: a pair whose slave was opened, written to, typed into (echo on) and closed again:
 * the master alone holds the pty, its other end closed, bytes queued both ways. */
static int closed_slave(void)
{
	struct pair p;
	open_pair(&p);
	put(p.slave, "from slave\n", 11);
	close(p.slave);
	put(p.master, "typed\n", 6);
	ready_and_wait();
	struct pollfd pfd = { .fd = p.master, .events = POLLIN };
	if (poll(&pfd, 1, 1000) != 1 || !(pfd.revents & POLLHUP))
		fail("the master no longer sees its other end closed (revents %x)", pfd.revents);
	expect(p.master, "from slave\r\ntyped\r\n", 19, "output and echo queued for the master");
	int slave = open(p.name, O_RDWR | O_NOCTTY);
	if (slave < 0)
		fail("open %s again: %s", p.name, strerror(errno));
	else
		expect(slave, "typed\n", 6, "input queued for the closed slave");
	return finish();
}

/* ttys bulk N M: a raw pair with N bytes the slave wrote and M typed into the master, unread:
 * more than the line discipline holds at once for N. After SIGUSR1 each reads back exactly. */
static void expect_pattern(int fd, size_t n, int seed, const char *what)
{
	char buf[4096];
	size_t got = 0;
	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 1000) != 1 || !(pfd.revents & POLLIN)) {
			fail("%s: %zu of %zu bytes, then nothing", what, got, n);
			return;
		}
		ssize_t r = read(fd, buf, sizeof buf);
		if (r <= 0) {
			fail("%s: read: %s", what, strerror(errno));
			return;
		}
		for (ssize_t i = 0; i < r; i++, got++)
			if ((unsigned char)buf[i] != (unsigned char)((got * 7 + seed) % 251)) {
				fail("%s: byte %zu differs", what, got);
				return;
			}
	}
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 50) == 1 && (pfd.revents & POLLIN))
		fail("%s: more than %zu bytes", what, n);
}

static void put_pattern(int fd, size_t n, int seed)
{
	char buf[1024];
	for (size_t done = 0; done < n;) {
		size_t k = n - done < sizeof buf ? n - done : sizeof buf;
		for (size_t i = 0; i < k; i++)
			buf[i] = (char)(((done + i) * 7 + seed) % 251);
		put(fd, buf, k);
		done += k;
	}
}

static int bulk(size_t out, size_t in)
{
	struct pair p;
	open_pair(&p);
	tcgetattr(p.slave, &p.t);
	cfmakeraw(&p.t);
	set_pair(&p);
	put_pattern(p.slave, out, 1);
	put_pattern(p.master, in, 2);
	ready_and_wait();
	expect_pattern(p.master, out, 1, "written by the slave");
	expect_pattern(p.slave, in, 2, "typed into the master");
	return finish();
}

/* ttys never: a pty master whose slave nobody opened, which amber refuses. */
static int never_opened(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m))
		die("posix_openpt");
	ready_and_wait();
	if (fcntl(m, F_GETFD) < 0)
		fail("master lost");
	return finish();
}

/* ttys console|vt: holds /dev/console or /dev/tty1, which amber refuses. */
static int device(const char *path)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		die(path);
	ready_and_wait();
	if (fcntl(fd, F_GETFD) < 0)
		fail("%s: fd lost", path);
	return finish();
}

int main(int argc, char **argv)
{
	start(1);
	if (argc > 1 && !strcmp(argv[1], "outside"))
		return outside(0);
	if (argc > 1 && !strcmp(argv[1], "outside-ctty"))
		return outside(1);
	as_user = argc > 1 && !strcmp(argv[1], "user");
	if (argc > 1 && !strcmp(argv[1], "closed"))
		return closed_slave();
	if (argc > 3 && !strcmp(argv[1], "bulk"))
		return bulk(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
	if (argc > 1 && !strcmp(argv[1], "never"))
		return never_opened();
	if (argc > 1 && !strcmp(argv[1], "console"))
		return device("/dev/console");
	if (argc > 1 && !strcmp(argv[1], "vt"))
		return device("/dev/tty1");
	open_pair(&a);
	open_pair(&b);

	tcgetattr(a.slave, &a.t);
	a.t.c_iflag = ICRNL | IXON | IUTF8;
	a.t.c_oflag = OPOST | ONLCR;
	a.t.c_lflag = ICANON | ISIG | IEXTEN | ECHOE | ECHOK;
	a.t.c_cc[VINTR] = 0x07; /* ^G */
	a.t.c_cc[VERASE] = 0x08;
	a.t.c_cc[VKILL] = 0x0b;
	a.t.c_cc[VEOL] = '%';
	cfsetspeed(&a.t, B9600);
	a.ws = (struct winsize){ .ws_row = 33, .ws_col = 101, .ws_xpixel = 707, .ws_ypixel = 909 };
	set_pair(&a);

	tcgetattr(b.slave, &b.t);
	cfmakeraw(&b.t);
	b.t.c_cc[VMIN] = 1;
	b.t.c_cc[VTIME] = 3;
	cfsetspeed(&b.t, B115200);
	b.ws = (struct winsize){ .ws_row = 24, .ws_col = 80 };
	set_pair(&b);
	int one = 1;
	if (ioctl(b.master, TIOCPKT, &one))
		die("TIOCPKT");
	/* B's slave is locked once open; A's is group tty, mode 0620 (and exclusive, below) */
	if (ioctl(b.master, TIOCSPTLCK, &one) || (!as_user && fchown(a.slave, -1, 5)) || fchmod(a.slave, 0620))
		die("lock, exclusive, owner");

	/* queued: typed into the masters (a completed line, one ended by VEOL, one by VEOF, a partial one), written by the slaves */
	put(a.master, "first line\nsecond%eof-ended\x04partial", 35);
	put(a.slave, "out A\n", 6);
	put(b.master, "raw-in", 6);
	put(b.slave, "raw-out", 7);

	if (pipe(report))
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0)
		session_child(a.name);
	close(report[1]);
	char c;
	if (read(report[0], &c, 1) != 1 || c != 'R')
		die("child setup");
	/* once the child has opened it: an exclusive slave opens for CAP_SYS_ADMIN only */
	if (ioctl(a.slave, TIOCEXCL))
		die("TIOCEXCL");
	ready_and_wait();

	same_termios(&a, "pty A");
	same_termios(&b, "pty B");
	int flag = -1;
	if (ioctl(b.master, TIOCGPTLCK, &flag) || flag != 1)
		fail("pty B: lock %d", flag);
	/* (no open of the locked slave to check: a refused open leaves the open slave in I/O error) */
	if (ioctl(a.master, TIOCGPTLCK, &flag) || flag != 0)
		fail("pty A: lock %d", flag);
	if (ioctl(a.slave, TIOCGEXCL, &flag) || flag != 1)
		fail("pty A: slave exclusive %d", flag);
	if (ioctl(b.slave, TIOCGEXCL, &flag) || flag != 0)
		fail("pty B: slave exclusive %d", flag);
	struct stat st;
	uid_t uid = as_user ? getuid() : 0;
	gid_t gid = as_user ? getgid() : 5;
	if (fstat(a.slave, &st) || st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != 0620)
		fail("pty A: slave %u:%u mode %o, was %u:%u mode 620", st.st_uid, st.st_gid, st.st_mode & 07777, uid, gid);
	int pkt = -1;
	if (ioctl(b.master, TIOCGPKT, &pkt) || pkt != 1)
		fail("pty B: packet mode %d", pkt);
	if (ioctl(a.master, TIOCGPKT, &pkt) || pkt != 0)
		fail("pty A: packet mode %d", pkt);

	expect(a.master, "out A\r\n", 7, "A: output queued for the master");
	expect_bytes(a.slave, "first line\n", 11, "A: first queued line", 0);
	expect_bytes(a.slave, "second%", 7, "A: line ended by VEOL", 0);
	expect(a.slave, "eof-ended", 9, "A: line ended by VEOF");
	put(a.master, "!\r", 2); /* completes the partial line; ICRNL makes \r a newline */
	expect(a.slave, "partial!\n", 9, "A: the partial line, completed");
	expect(b.master, "\0raw-out", 8, "B: output queued for the master (one packet)");
	expect(b.slave, "raw-in", 6, "B: input queued for the slave");

	put(a.slave, "back\n", 5);
	expect(a.master, "back\r\n", 6, "A: round trip slave to master");
	put(b.master, "ping", 4);
	expect(b.slave, "ping", 4, "B: round trip master to slave");
	put(b.slave, "pong", 4);
	expect(b.master, "\0pong", 5, "B: round trip slave to master");

	kill(child, SIGUSR1);
	char msg[201] = { 0 };
	struct pollfd pfd = { .fd = report[0], .events = POLLIN };
	if (poll(&pfd, 1, 5000) != 1 || read(report[0], msg, 200) <= 0)
		fail("child: no report");
	else if (strcmp(msg, "C ok"))
		fail("child: %s", msg + 2);

	put(a.master, "\x07", 1); /* A's VINTR */
	memset(msg, 0, sizeof msg);
	if (poll(&pfd, 1, 5000) != 1 || read(report[0], msg, 1) != 1 || msg[0] != 'I')
		fail("VINTR typed into A: the foreground group got no SIGINT (%s)", msg);
	close(a.master);
	if (poll(&pfd, 1, 5000) != 1 || read(report[0], msg, 1) != 1 || msg[0] != 'H')
		fail("A's master closed: the session leader got no SIGHUP (%c)", msg[0] ? msg[0] : '-');
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
		fail("session leader did not exit by itself (it got a signal meant for the foreground group?)");
	if (read(report[0], msg, 1) > 0)
		fail("foreground child did not exit cleanly");
	return finish();
}
