/* A mode C reader of the virtual ME162 that sets its port in one of the ways real programs do,
 * for the serial-port matrix (tests/test_serial_styles.py).
 *
 *   styles PORT SPEED STYLE [--early] [--stall]
 *
 * STYLE: lflag0    tcgetattr, c_lflag = 0 (clears EXTPROC), cfsetspeed, tcsetattr
 *        cfmakeraw cfmakeraw on the settings, then 7E1 and cfsetspeed
 *        bother    TCSETS2 with BOTHER and a numeric c_ospeed for every speed (Rust serialport)
 *        reapply   cfmakeraw, and the unchanged 300 Bd settings applied again before the ACK
 * SPEED: the virtual meter's time scale (20: every wait is 20 times shorter).
 * --early: switch to 9600 Bd right after writing the ACK, before it has left the wire.
 * --stall: stop after the identification and wait to be killed (a reader killed mid-session).
 * Prints the readout and exits 0 when its BCC is right; 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* The kernel's struct termios2 (asm-generic); <asm/termbits.h> would clash with glibc's
 * struct termios, which is larger: using one where the other is expected overwrites the stack. */
struct termios2 {
    tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
    cc_t c_line;
    cc_t c_cc[19];
    speed_t c_ispeed, c_ospeed;
};
#ifndef TCGETS2
#define TCGETS2 _IOR('T', 0x2A, struct termios2)
#define TCSETS2 _IOW('T', 0x2B, struct termios2)
#endif
#ifndef BOTHER
#define BOTHER 0010000
#endif

static double scale = 1.0;
static const char *style;

static void nap(double seconds) {
    struct timespec ts;
    seconds /= scale;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

static int set_port(int fd, int baud) {
    if (strcmp(style, "bother") == 0) {
        struct termios2 t;
        if (ioctl(fd, TCGETS2, &t) < 0) return -1;
        t.c_iflag = 0;
        t.c_oflag = 0;
        t.c_lflag = 0;
        t.c_cflag = (t.c_cflag & ~(CBAUD | CSIZE | PARODD | CSTOPB | CRTSCTS)) | BOTHER | CS7 | PARENB | CREAD | CLOCAL;
        t.c_ispeed = t.c_ospeed = (speed_t)baud;
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        return ioctl(fd, TCSETS2, &t);
    }
    struct termios t;
    if (tcgetattr(fd, &t) < 0) return -1;
    if (strcmp(style, "lflag0") == 0) {
        t.c_lflag = 0;
        t.c_iflag = 0;
        t.c_oflag = 0;
    } else {
        cfmakeraw(&t);
    }
    t.c_cflag = (t.c_cflag & ~(CSIZE | PARODD | CSTOPB | CRTSCTS)) | CS7 | PARENB | CREAD | CLOCAL;
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    cfsetspeed(&t, baud == 300 ? B300 : B9600);
    return tcsetattr(fd, TCSANOW, &t);
}

/* Read until `end` has been seen (plus `extra` bytes) or `timeout` protocol seconds of silence. */
static size_t read_until(int fd, unsigned char *buf, size_t cap, size_t len, const char *end, size_t extra, double timeout) {
    struct pollfd p = {fd, POLLIN, 0};
    size_t endlen = strlen(end);
    for (;;) {
        if (len >= endlen + extra) {
            for (size_t i = 0; i + endlen + extra <= len; i++)
                if (memcmp(buf + i, end, endlen) == 0) return len;
        }
        int r = poll(&p, 1, (int)(timeout * 1000 / scale) + 1);
        if (r <= 0) return len;
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EAGAIN) continue;
        if (n <= 0) return len;
        len += (size_t)n;
        if (len >= cap) return len;
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: styles PORT SPEED STYLE [--early] [--stall]\n");
        return 2;
    }
    scale = atof(argv[2]);
    style = argv[3];
    int early = 0, stall = 0;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--early") == 0) early = 1;
        if (strcmp(argv[i], "--stall") == 0) stall = 1;
    }
    int fd = open(argv[1], O_RDWR | O_NOCTTY);
    if (fd < 0) { perror("open"); return 1; }
    if (set_port(fd, 300) < 0) { perror("set 300 7E1"); return 1; }
    unsigned char buf[4096];
    if (write(fd, "/?!\r\n", 5) != 5) { perror("write"); return 1; }
    size_t n = read_until(fd, buf, sizeof buf, 0, "\r\n", 0, 2.5);
    if (n < 7 || buf[0] != '/') { fprintf(stderr, "no identification (%zu bytes)\n", n); return 1; }
    if (stall) { pause(); return 1; }
    nap(0.25);
    /* reapply: the unchanged 300 Bd 7E1 settings once more (a configure() called again) */
    if (strcmp(style, "reapply") == 0 && set_port(fd, 300) < 0) { perror("set 300 7E1 again"); return 1; }
    if (write(fd, "\x06" "050\r\n", 6) != 6) { perror("write ACK"); return 1; }
    if (!early) nap(6 * 10 / 300.0 + 0.03);  /* the ACK's wire time, then 30 ms */
    if (set_port(fd, 9600) < 0) { perror("set 9600"); return 1; }
    n = read_until(fd, buf, sizeof buf, 0, "\x03", 1, 2.5);
    unsigned char *stx = memchr(buf, 0x02, n);
    unsigned char *etx = stx ? memchr(stx, 0x03, n - (size_t)(stx - buf)) : NULL;
    if (!stx || !etx || etx + 1 >= buf + n) { fprintf(stderr, "no readout (%zu bytes)\n", n); return 1; }
    unsigned char bcc = 0;
    for (unsigned char *c = stx + 1; c <= etx; c++) bcc ^= *c;
    if ((bcc & 0x7f) != (etx[1] & 0x7f)) { fprintf(stderr, "BCC mismatch\n"); return 1; }
    fwrite(stx + 1, 1, (size_t)(etx - stx - 1), stdout);
    close(fd);
    return 0;
}
