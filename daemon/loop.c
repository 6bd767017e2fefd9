/* SPDX-License-Identifier: Apache-2.0 */
#include "loop.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "log.h"
#include "util.h"

typedef enum SourceType {
        SOURCE_IO,
        SOURCE_TIMER,
} SourceType;

struct LoopSource {
        Loop *loop;
        SourceType type;
        int fd;    /* watched fd (io) or our timerfd (timer) */
        bool dead; /* freed by the user; memory released after dispatch */
        loop_io_cb io_cb;
        loop_timer_cb timer_cb;
        void *userdata;
        LoopSource *next_dead;
};

struct Loop {
        int epoll_fd;
        bool exiting;
        int exit_code;
        unsigned n_sources;
        LoopSource *dead;
        loop_prepare_cb prepare;
        void *prepare_userdata;
        loop_idle_cb idle;
        void *idle_userdata;
        bool idle_pending;
};

int loop_new(Loop **ret)
{
        Loop *l = calloc(1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epoll_fd < 0) {
                int r = negative_errno();
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

static void loop_release_dead(Loop *l)
{
        while (l->dead) {
                LoopSource *s = l->dead;
                l->dead = s->next_dead;
                free(s);
        }
}

Loop *loop_free(Loop *l)
{
        if (!l)
                return NULL;
        loop_release_dead(l);
        safe_close(l->epoll_fd);
        free(l);
        return NULL;
}

static int source_register(Loop *l, LoopSource *s, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.ptr = s};

        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
                return negative_errno();
        l->n_sources++;
        return 0;
}

int loop_add_io(Loop *l, int fd, uint32_t events, loop_io_cb cb, void *userdata, LoopSource **ret)
{
        _cleanup_free_ LoopSource *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        *s =
            (LoopSource){.loop = l, .type = SOURCE_IO, .fd = fd, .io_cb = cb, .userdata = userdata};
        r = source_register(l, s, events);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int loop_source_set_time(LoopSource *s, usec_t when)
{
        struct itimerspec its = {0};

        assert(s->type == SOURCE_TIMER);
        if (when == 0)
                when = 1; /* 0 would disarm */
        if (when != USEC_INFINITY) {
                its.it_value.tv_sec = (time_t)(when / USEC_PER_SEC);
                its.it_value.tv_nsec = (long)((when % USEC_PER_SEC) * NSEC_PER_USEC);
        }
        return RET_NERRNO(timerfd_settime(s->fd, TFD_TIMER_ABSTIME, &its, NULL));
}

int loop_add_timer(Loop *l, usec_t when, loop_timer_cb cb, void *userdata, LoopSource **ret)
{
        _cleanup_free_ LoopSource *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        *s = (LoopSource){.loop = l, .type = SOURCE_TIMER, .timer_cb = cb, .userdata = userdata};
        s->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (s->fd < 0)
                return negative_errno();
        r = loop_source_set_time(s, when);
        if (r >= 0)
                r = source_register(l, s, EPOLLIN);
        if (r < 0) {
                safe_close(s->fd);
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

LoopSource *loop_source_free(LoopSource *s)
{
        Loop *l;

        if (!s || s->dead)
                return NULL;
        l = s->loop;
        (void)epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL);
        if (s->type == SOURCE_TIMER)
                s->fd = safe_close(s->fd);
        s->dead = true;
        s->next_dead = l->dead;
        l->dead = s;
        l->n_sources--;
        return NULL;
}

void loop_set_prepare(Loop *l, loop_prepare_cb cb, void *userdata)
{
        l->prepare = cb;
        l->prepare_userdata = userdata;
}

void loop_set_idle(Loop *l, loop_idle_cb cb, void *userdata)
{
        l->idle = cb;
        l->idle_userdata = userdata;
}

void loop_idle_wake(Loop *l)
{
        l->idle_pending = true;
}

void loop_exit(Loop *l, int code)
{
        l->exiting = true;
        l->exit_code = code;
}

static void source_dispatch(LoopSource *s, uint32_t revents)
{
        int r;

        if (s->dead)
                return;
        if (s->type == SOURCE_TIMER) {
                uint64_t expirations;
                if (read(s->fd, &expirations, sizeof(expirations)) < 0)
                        return; /* spurious: not expired (rearmed meanwhile) */
                r = s->timer_cb(s, now_usec(), s->userdata);
        } else
                r = s->io_cb(s, s->fd, revents, s->userdata);
        if (r < 0)
                log_debug_errno(r, "Event callback failed, ignoring: %m");
}

int loop_run(Loop *l)
{
        struct epoll_event events[64];

        while (!l->exiting) {
                int timeout_ms = -1, n;

                if (l->prepare) {
                        usec_t max = l->prepare(l->prepare_userdata);
                        if (max != USEC_INFINITY)
                                timeout_ms = (int)MIN((max + USEC_PER_MSEC - 1) / USEC_PER_MSEC,
                                                      (usec_t)INT32_MAX);
                }
                if (l->exiting)
                        break;
                if (l->idle && l->idle_pending)
                        timeout_ms = 0; /* look for events first, then do idle work */
                n = epoll_wait(l->epoll_fd, events, (int)ELEMENTSOF(events), timeout_ms);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0 && l->idle && l->idle_pending) {
                        l->idle_pending = l->idle(l->idle_userdata);
                        loop_release_dead(l);
                        continue;
                }
                for (int i = 0; i < n; i++)
                        source_dispatch(events[i].data.ptr, events[i].events);
                loop_release_dead(l);
        }
        return l->exit_code;
}
