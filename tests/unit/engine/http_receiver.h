/* http_receiver — a tiny HTTP/1.1 receiver on loopback for tests of outgoing notifications:
 * answers the first `fail_first` requests with `status_fail`, then 200, and keeps the bodies
 * and paths of the accepted ones. */
#ifndef QR_TEST_HTTP_RECEIVER_H
#define QR_TEST_HTTP_RECEIVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECEIVER_KEEP 64

typedef struct receiver {
    int fd;
    int port;
    pthread_t thread;
    atomic_int requests;
    atomic_int ok_count;
    int fail_first;
    int status_fail; /* status of the failing answers */
    atomic_bool stop;
    pthread_mutex_t mu;
    char last_body[8192];
    char last_path[256];
    int kept;
    char *bodies[RECEIVER_KEEP];
    char paths[RECEIVER_KEEP][128];
} receiver;

static inline void *receiver_main(void *arg)
{
    receiver *r = arg;
    while (!atomic_load(&r->stop)) {
        int c = accept(r->fd, NULL, NULL);
        if (c < 0) continue;
        if (atomic_load(&r->stop)) {
            close(c);
            break;
        }
        char buf[16384];
        size_t len = 0;
        long want = -1;
        while (len < sizeof buf - 1) {
            ssize_t got = recv(c, buf + len, sizeof buf - 1 - len, 0);
            if (got <= 0) break;
            len += (size_t)got;
            buf[len] = 0;
            char *hdr_end = strstr(buf, "\r\n\r\n");
            if (hdr_end) {
                char *cl = strcasestr(buf, "Content-Length:");
                long body = cl ? strtol(cl + 15, NULL, 10) : 0;
                want = (long)(hdr_end + 4 - buf) + body;
                if ((long)len >= want) break;
            }
        }
        int n = atomic_fetch_add(&r->requests, 1) + 1;
        int status = n <= r->fail_first ? r->status_fail : 200;
        if (status == 200) {
            pthread_mutex_lock(&r->mu);
            char *hdr_end = strstr(buf, "\r\n\r\n");
            snprintf(r->last_body, sizeof r->last_body, "%s", hdr_end ? hdr_end + 4 : "");
            sscanf(buf, "POST %255s", r->last_path);
            if (r->kept < RECEIVER_KEEP) {
                r->bodies[r->kept] = strdup(r->last_body);
                snprintf(r->paths[r->kept], sizeof r->paths[0], "%s", r->last_path);
                r->kept++;
            }
            pthread_mutex_unlock(&r->mu);
            atomic_fetch_add(&r->ok_count, 1);
        }
        char resp[128];
        int rl =
            snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", status);
        if (send(c, resp, (size_t)rl, MSG_NOSIGNAL) < 0) {
        }
        close(c);
    }
    return NULL;
}

static inline int receiver_start(receiver *r, int port, int fail_first, int status_fail)
{
    memset(r, 0, sizeof *r);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&r->mu, NULL);
    r->fail_first = fail_first;
    r->status_fail = status_fail;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (bind(r->fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    socklen_t al = sizeof a;
    getsockname(r->fd, (struct sockaddr *)&a, &al);
    r->port = ntohs(a.sin_port);
    listen(r->fd, 16);
    return pthread_create(&r->thread, NULL, receiver_main, r);
}

static inline void receiver_stop(receiver *r)
{
    atomic_store(&r->stop, true);
    /* wake accept() with a connection of our own */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)r->port);
    if (connect(c, (struct sockaddr *)&a, sizeof a) == 0) {
    }
    close(c);
    pthread_join(r->thread, NULL);
    close(r->fd);
    for (int idx = 0; idx < r->kept; idx++) free(r->bodies[idx]);
    pthread_mutex_destroy(&r->mu);
}

/* A port nothing listens on: bind one, read it, close it. */
static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

#endif
