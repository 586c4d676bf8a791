/*
 * iec_read: a small IEC 62056-21 mode C reader in C, around a serial port - a reader that is
 * not Python, for the conformance suite to grade.
 *
 *   iec_read PORT
 *
 * Signs on at 300 Bd 7E1, sends ACK 0 Z 0, waits for the ACK to leave the wire (the character
 * time: tcdrain returns early on ptys and many USB adapters), switches to the offered speed,
 * reads the readout to ETX + BCC with inter-character timeouts, checks the BCC and prints the
 * JSON schema of me162-read --json. Exit: 0 ok, 2 usage/port, 3 no identification, 4 no data,
 * 5 BCC error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int set_speed(int fd, speed_t speed) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return -1;
    cfmakeraw(&t);
    t.c_cflag &= ~(CSIZE | PARODD | CSTOPB | CRTSCTS);
    t.c_cflag |= CS7 | PARENB | CLOCAL | CREAD;
    t.c_iflag &= ~(IXON | IXOFF | INPCK | ISTRIP);
    cfsetispeed(&t, speed);
    cfsetospeed(&t, speed);
    return tcsetattr(fd, TCSANOW, &t);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* one byte, or -1 after timeout_ms of silence */
static int read_byte(int fd, long timeout_ms) {
    fd_set set;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    FD_ZERO(&set);
    FD_SET(fd, &set);
    if (select(fd + 1, &set, NULL, NULL, &tv) <= 0) return -1;
    unsigned char c;
    if (read(fd, &c, 1) != 1) return -1;
    return c & 0x7F;
}

static void json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c > 0x7E) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* the data sets of one line: [address](value[*unit])... */
static int print_line(const char *line, size_t len, int number, int first) {
    size_t i = 0;
    while (i < len) {
        size_t open = i;
        while (open < len && line[open] != '(') open++;
        if (open >= len) break;
        if (!first) printf(",");
        first = 0;
        printf("{\"line\":%d,\"address\":", number);
        if (open > i) json_string(line + i, open - i); else printf("null");
        printf(",\"values\":[");
        size_t pos = open;
        int v = 0;
        while (pos < len && line[pos] == '(') {
            size_t close = pos + 1;
            while (close < len && line[close] != ')') close++;
            size_t star = pos + 1;
            while (star < close && line[star] != '*') star++;
            printf("%s{\"value\":", v++ ? "," : "");
            json_string(line + pos + 1, star - pos - 1);
            printf(",\"unit\":");
            if (star < close) json_string(line + star + 1, close - star - 1); else printf("null");
            printf("}");
            pos = close + 1;
        }
        printf("],\"raw\":");
        json_string(line + i, pos - i);
        printf("}");
        i = pos;
    }
    return first;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: iec_read PORT\n"); return 2; }
    int fd = open(argv[1], O_RDWR | O_NOCTTY);
    if (fd < 0) { fprintf(stderr, "iec_read: cannot open %s: %s\n", argv[1], strerror(errno)); return 2; }
    if (set_speed(fd, B300) != 0) { fprintf(stderr, "iec_read: cannot set 300 Bd: %s\n", strerror(errno)); return 2; }
    tcflush(fd, TCIOFLUSH);
    if (write(fd, "/?!\r\n", 5) != 5) { fprintf(stderr, "iec_read: write failed\n"); return 2; }

    char ident[64];
    size_t n = 0;
    int c;
    while ((c = read_byte(fd, n ? 1500 : 3000)) >= 0) {
        if (n == 0 && c != '/') continue; /* noise or an echo before the identification */
        if (n < sizeof ident - 1) ident[n++] = (char)c;
        if (n >= 2 && ident[n - 2] == '\r' && ident[n - 1] == '\n') break;
        if (n >= 5 && ident[1] == '?' && c == '\n') n = 0; /* the echo of our request */
    }
    if (n < 7 || ident[n - 1] != '\n') { fprintf(stderr, "iec_read: no identification\n"); return 3; }
    ident[n - 2] = '\0';

    static const speed_t speeds[] = {B300, B600, B1200, B2400, B4800, B9600, B19200};
    char z = ident[4];
    int switch_speed = z >= '1' && z <= '6';
    sleep_ms(300); /* the meter's reaction time before the option select */
    char ack[6] = {0x06, '0', switch_speed ? z : '0', '0', '\r', '\n'};
    if (write(fd, ack, 6) != 6) { fprintf(stderr, "iec_read: write failed\n"); return 2; }
    tcdrain(fd);
    sleep_ms(6 * 10 * 1000 / 300 + 20); /* the ACK's wire time: tcdrain may return early */
    if (switch_speed && set_speed(fd, speeds[z - '0']) != 0) {
        fprintf(stderr, "iec_read: cannot switch speed: %s\n", strerror(errno));
        return 2;
    }

    static char block[65536];
    size_t len = 0;
    int started = 0, bcc = -1;
    while ((c = read_byte(fd, started ? 1500 : 4000)) >= 0) {
        if (!started) { if (c == 0x02) started = 1; continue; }
        if (c == 0x03) { bcc = read_byte(fd, 1500); break; }
        if (len < sizeof block) block[len++] = (char)c;
    }
    if (!started || bcc < 0) { fprintf(stderr, "iec_read: identification %s but no complete data message\n", ident); return 4; }
    int x = 0x03;
    for (size_t i = 0; i < len; i++) x ^= block[i];
    if ((x & 0x7F) != bcc) {
        fprintf(stderr, "iec_read: BCC mismatch: computed 0x%02X, received 0x%02X\n", x & 0x7F, bcc);
        return 5;
    }
    printf("{\"identification\":{\"raw\":");
    json_string(ident, strlen(ident));
    printf("},\"bcc\":{\"present\":true,\"valid\":true},\"data_sets\":[");
    int first = 1, number = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || block[i] == '\r' || block[i] == '\n') {
            if (i > start && !(i - start == 1 && block[start] == '!')) first = print_line(block + start, i - start, ++number, first);
            start = i + 1;
        }
    }
    printf("]}\n");
    close(fd);
    return 0;
}
