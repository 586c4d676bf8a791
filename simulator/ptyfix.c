/* me162's pty fix for readers linked against glibc (LD_PRELOAD).
 *
 * Debian's and Fedora's glibc patch tcsetattr: after the TCSETS ioctl has succeeded, it reads
 * the settings back and returns EINVAL when the request asked for CS7/PARENB, the terminal
 * shows CS8 without parity and nothing else changed.  A pty always shows CS8 without parity
 * (the kernel forces it), so a reader that applies the same 7E1 settings twice in a row fails
 * on a pty although it works on every real serial port, which keeps CS7/PARENB.
 *
 * This tcsetattr calls glibc's.  Only when that fails with EINVAL on a pty slave, and the
 * settings now in force are exactly the ones requested but for the character size, parity
 * and receiver bits the pty forces, does it report the success the kernel reported.  Every
 * other call and every other error is glibc's own.  See docs/serial-port.md.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

static int pty_slave(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
        return 0;
    unsigned int maj = major(st.st_rdev);
    return maj >= 136 && maj <= 143; /* Unix98 pty slaves */
}

int tcsetattr(int fd, int optional_actions, const struct termios *want)
{
    static int (*glibc_tcsetattr)(int, int, const struct termios *);
    if (glibc_tcsetattr == NULL)
        glibc_tcsetattr = (int (*)(int, int, const struct termios *))dlsym(RTLD_NEXT, "tcsetattr");
    if (glibc_tcsetattr == NULL) {
        errno = ENOSYS;
        return -1;
    }
    int saved = errno;
    int rc = glibc_tcsetattr(fd, optional_actions, want);
    if (rc == 0 || errno != EINVAL || want == NULL || !pty_slave(fd))
        return rc;
    if (optional_actions != TCSANOW && optional_actions != TCSADRAIN && optional_actions != TCSAFLUSH)
        return rc;
    struct termios now;
    if (tcgetattr(fd, &now) != 0) {
        errno = EINVAL;
        return rc;
    }
    const tcflag_t forced = CSIZE | PARENB | CREAD;
    if (now.c_iflag == want->c_iflag && now.c_oflag == want->c_oflag && now.c_lflag == want->c_lflag
        && (now.c_cflag & ~forced) == (want->c_cflag & ~forced)
        && cfgetispeed(&now) == cfgetispeed(want) && cfgetospeed(&now) == cfgetospeed(want)) {
        errno = saved;
        return 0;
    }
    errno = EINVAL;
    return rc;
}
