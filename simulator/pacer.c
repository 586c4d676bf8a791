/* me162's pacer: writes the characters of streaming readouts to their ptys, each when its time
 * comes, from a thread of its own that never waits for Python's interpreter lock.
 *
 * The simulator (pty_transport.py) asks the link which characters reach the reader next if it
 * does nothing, and hands them here with their due times (CLOCK_MONOTONIC, the clock of
 * Python's time.monotonic).  This thread sleeps until the earliest is due and writes every
 * character due by then (and those due within the port's "early" window: one wake-up for
 * characters due within a fraction of a character of each other), one write(2) a character.
 * The simulator asks how many are written (to move its link past them), adds more, and, when
 * the reader acts, cancels the rest: a cancel returns only once no further character of that
 * port will be written, so whatever the simulator writes next comes after it.  The thread
 * itself stops writing to a port as soon as the reader's act is there to read (below), so
 * that a simulator slow to wake never has characters written that the act should have changed.
 *
 * A port is a slot: pacer_open gives one for a master descriptor; pacer_close ends it (before
 * the descriptor is closed, so that nothing is written to a number the kernel hands out again).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct ch {
    int64_t due;    /* ns, CLOCK_MONOTONIC */
    uint8_t n;      /* bytes to write for this character (0: the reader's flags drop it) */
    uint8_t b[3];
};

struct slot {
    int fd;         /* -1: free */
    int64_t early;  /* ns */
    struct ch *q;
    size_t len, cap, head;
    int64_t written;   /* characters handed over since pacer_open */
    int64_t dropped;   /* of them, lost because the reader's buffer was full (EAGAIN) */
    int error;         /* the first errno other than EAGAIN/EIO, 0 if none */
    int held;          /* the reader acted: nothing more is written until a cancel */
};

struct pacer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int stop;
    struct slot *slots;
    int nslots;
    struct pollfd *look;  /* nslots of each: the masters looked at before a sweep */
    int *looked;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Write what is due in one slot; the next due time (INT64_MAX: nothing queued). */
static int64_t serve_slot(struct slot *s, int64_t now)
{
    while (s->head < s->len) {
        struct ch *c = &s->q[s->head];
        if (c->due > now + s->early)
            return c->due;
        if (c->n) {
            ssize_t w = write(s->fd, c->b, c->n);
            if (w < 0) {
                if (errno == EAGAIN)
                    s->dropped++;
                else if (errno != EIO && s->error == 0)
                    s->error = errno;
            }
        }
        s->head++;
        s->written++;
    }
    s->head = s->len = 0;
    return INT64_MAX;
}

/* struct sched_attr of sched_setattr(2), which glibc does not declare before 2.41 */
struct slice_attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
};

static void *run(void *arg)
{
    struct pacer *p = arg;
    prctl(PR_SET_NAME, "me162-pacer");
    prctl(PR_SET_TIMERSLACK, 1000UL); /* wake within a microsecond, not the default 50 */
    /* Ask for the shortest time slice (0.1 ms; Linux >= 6.12, EEVDF, no privilege needed):
     * a waking thread with a short slice gets an earlier deadline and so the CPU at once,
     * before a busy thread of the same priority (the meters' own loop) has used its slice.
     * Older kernels ignore or refuse it; either way nothing else changes. */
    struct slice_attr attr = {.size = sizeof attr, .policy = 0 /* SCHED_OTHER */, .runtime = 100000};
    syscall(SYS_sched_setattr, 0, &attr, 0);
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        int64_t now = now_ns();
        int64_t next = INT64_MAX;
        /* A master with something to read means the reader has acted (written, changed its
         * settings, closed the port) since the simulator planned these characters: they
         * assumed it would not.  Its loop wakes for the act and cancels; until then nothing
         * more is written there, as nothing would be if the loop wrote them itself. */
        int n = 0;
        for (int i = 0; i < p->nslots; i++) {
            struct slot *s = &p->slots[i];
            if (s->fd >= 0 && !s->held && s->head < s->len && s->q[s->head].due <= now + s->early) {
                p->look[n] = (struct pollfd){.fd = s->fd, .events = POLLIN};
                p->looked[n++] = i;
            }
        }
        if (n && poll(p->look, (nfds_t)n, 0) > 0)
            for (int k = 0; k < n; k++)
                if (p->look[k].revents)
                    p->slots[p->looked[k]].held = 1;
        for (int i = 0; i < p->nslots; i++) {
            if (p->slots[i].fd < 0 || p->slots[i].held)
                continue;
            int64_t t = serve_slot(&p->slots[i], now);
            if (t < next)
                next = t;
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&p->cv, &p->mu);
        } else if (next > now_ns()) {
            struct timespec until = {next / 1000000000, next % 1000000000};
            pthread_cond_timedwait(&p->cv, &p->mu, &until);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct pacer *pacer_new(void)
{
    struct pacer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mu, NULL);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void pacer_free(struct pacer *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < p->nslots; i++)
        free(p->slots[i].q);
    free(p->slots);
    free(p->look);
    free(p->looked);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* A slot for the master descriptor fd; -1 if out of memory. */
int pacer_open(struct pacer *p, int fd)
{
    pthread_mutex_lock(&p->mu);
    int i = 0;
    while (i < p->nslots && p->slots[i].fd >= 0)
        i++;
    if (i == p->nslots) {
        struct slot *more = realloc(p->slots, (size_t)(p->nslots + 16) * sizeof *more);
        if (more == NULL) {
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
        for (int j = p->nslots; j < p->nslots + 16; j++)
            more[j] = (struct slot){.fd = -1};
        p->slots = more;
        struct pollfd *look = realloc(p->look, (size_t)(p->nslots + 16) * sizeof *look);
        if (look != NULL)
            p->look = look;
        int *looked = realloc(p->looked, (size_t)(p->nslots + 16) * sizeof *looked);
        if (looked != NULL)
            p->looked = looked;
        if (look == NULL || looked == NULL) {
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
        p->nslots += 16;
    }
    struct slot *s = &p->slots[i];
    free(s->q);
    *s = (struct slot){.fd = fd};
    pthread_mutex_unlock(&p->mu);
    return i;
}

/* Queue n characters: due[k] (ns, ascending, after those queued) and chars[4k] = the number of
 * bytes (0-3), then the bytes; early_ns: how early this port's characters may be written.
 * 0, or -1 if out of memory (nothing queued). */
int pacer_add(struct pacer *p, int slot, int n, const int64_t *due, const uint8_t *chars, int64_t early_ns)
{
    pthread_mutex_lock(&p->mu);
    struct slot *s = &p->slots[slot];
    if (s->len + (size_t)n > s->cap) {
        size_t cap = (s->len + (size_t)n) * 2;
        struct ch *q = realloc(s->q, cap * sizeof *q);
        if (q == NULL) {
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
        s->q = q;
        s->cap = cap;
    }
    int earlier = s->head == s->len;
    for (int k = 0; k < n; k++) {
        struct ch *c = &s->q[s->len + (size_t)k];
        c->due = due[k];
        c->n = chars[4 * k] > 3 ? 3 : chars[4 * k];
        memcpy(c->b, chars + 4 * k + 1, 3);
    }
    s->len += (size_t)n;
    s->early = early_ns;
    if (earlier) /* the thread may sleep past this port's first character: wake it */
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* Characters handed over since pacer_open. */
int64_t pacer_written(struct pacer *p, int slot)
{
    pthread_mutex_lock(&p->mu);
    int64_t w = p->slots[slot].written;
    pthread_mutex_unlock(&p->mu);
    return w;
}

/* Drop what is queued and not written; the characters handed over since pacer_open.  No
 * character of this slot is written after it returns. */
int64_t pacer_cancel(struct pacer *p, int slot)
{
    pthread_mutex_lock(&p->mu);
    struct slot *s = &p->slots[slot];
    s->head = s->len = 0;
    s->held = 0;
    int64_t w = s->written;
    pthread_mutex_unlock(&p->mu);
    return w;
}

/* Characters lost to a full buffer, and the first other write error (errno, 0: none), since
 * the last call; both are cleared. */
int64_t pacer_dropped(struct pacer *p, int slot, int *error)
{
    pthread_mutex_lock(&p->mu);
    struct slot *s = &p->slots[slot];
    int64_t d = s->dropped;
    *error = s->error;
    s->dropped = 0;
    s->error = 0;
    pthread_mutex_unlock(&p->mu);
    return d;
}

void pacer_close(struct pacer *p, int slot)
{
    pthread_mutex_lock(&p->mu);
    struct slot *s = &p->slots[slot];
    free(s->q);
    *s = (struct slot){.fd = -1};
    pthread_mutex_unlock(&p->mu);
}
