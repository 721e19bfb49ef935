/*
 * access_log.c: format strings, per-thread rings and the file writer.
 */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "mp_common.h"

/* ---- format parsing -------------------------------------------------------------- */

struct cmd {
    const char *name;
    enum mp_al_part_kind kind;
};

static const struct cmd commands[] = {
    {"START_TIME", MP_AL_START_TIME},
    {"PROTOCOL", MP_AL_METHOD_PROTOCOL},
    {"RESPONSE_CODE", MP_AL_RESPONSE_CODE},
    {"RESPONSE_FLAGS", MP_AL_RESPONSE_FLAGS},
    {"BYTES_RECEIVED", MP_AL_BYTES_RECEIVED},
    {"BYTES_SENT", MP_AL_BYTES_SENT},
    {"DURATION", MP_AL_DURATION},
    {"REQUEST_DURATION", MP_AL_REQUEST_DURATION},
    {"RESPONSE_DURATION", MP_AL_RESPONSE_DURATION},
    {"UPSTREAM_HOST", MP_AL_UPSTREAM_HOST},
    {"UPSTREAM_CLUSTER", MP_AL_UPSTREAM_CLUSTER},
    {"DOWNSTREAM_REMOTE_ADDRESS", MP_AL_DOWNSTREAM_REMOTE_ADDRESS},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", MP_AL_DOWNSTREAM_REMOTE_ADDRESS_NO_PORT},
    {"DOWNSTREAM_LOCAL_ADDRESS", MP_AL_DOWNSTREAM_LOCAL_ADDRESS},
    {"UPSTREAM_TRANSPORT_FAILURE_REASON", MP_AL_UPSTREAM_TRANSPORT_FAILURE_REASON},
    {"ROUTE_NAME", MP_AL_ROUTE_NAME},
    {"GRPC_STATUS", MP_AL_GRPC_STATUS},
    {"DOWNSTREAM_PEER_URI_SAN", MP_AL_DOWNSTREAM_PEER_URI_SAN},
    {"REQUESTED_SERVER_NAME", MP_AL_REQUESTED_SERVER_NAME},
    {"REQ", MP_AL_REQ},
    {"RESP", MP_AL_RESP},
    {"TRAILER", MP_AL_TRAILER},
};

static int add_part(struct mp_al_format *f, struct mp_al_part *p)
{
    struct mp_al_part *v = realloc(f->parts, (f->n_parts + 1) * sizeof(*v));
    if (!v)
        return MP_ERR_NOMEM;
    f->parts = v;
    v[f->n_parts++] = *p;
    return 0;
}

static int add_literal(struct mp_al_format *f, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    struct mp_al_part p = {.kind = MP_AL_LITERAL, .text = strndup(s, n)};
    if (!p.text)
        return MP_ERR_NOMEM;
    if (add_part(f, &p) < 0) {
        free(p.text);
        return MP_ERR_NOMEM;
    }
    return 0;
}

static char *lower_dup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (d)
        for (char *c = d; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c + 32);
    return d;
}

int mp_al_format_parse(const char *fmt, struct mp_al_format **out, char **err)
{
    struct mp_al_format *f = calloc(1, sizeof(*f));
    if (!f)
        return MP_ERR_NOMEM;
    const char *p = fmt, *lit = fmt;
    int rc = 0;
    while (*p) {
        if (*p != '%') {
            p++;
            continue;
        }
        /* "%%" is not special in Envoy; a lone % followed by no command is literal */
        const char *start = p + 1;
        const char *q = start;
        while ((*q >= 'A' && *q <= 'Z') || *q == '_' || (*q >= '0' && *q <= '9'))
            q++;
        size_t nlen = (size_t)(q - start);
        const struct cmd *c = NULL;
        for (size_t i = 0; i < MP_ARRAY_LEN(commands) && nlen; i++)
            if (strlen(commands[i].name) == nlen && memcmp(commands[i].name, start, nlen) == 0)
                c = &commands[i];
        if (!c) {
            if (nlen) {
                rc = mp_set_err(err, "format: unknown command %%%.*s%% at position %zu", (int)nlen,
                                start, (size_t)(p - fmt));
                goto fail;
            }
            p++;
            continue;
        }
        struct mp_al_part part = {.kind = c->kind};
        if (*q == '(') {
            const char *close = strchr(q, ')');
            if (!close) {
                rc = mp_set_err(err, "format: missing ')' after %%%.*s( at position %zu", (int)nlen,
                                start, (size_t)(p - fmt));
                goto fail;
            }
            const char *arg = q + 1;
            size_t alen = (size_t)(close - arg);
            if (c->kind == MP_AL_REQ || c->kind == MP_AL_RESP || c->kind == MP_AL_TRAILER) {
                const char *qm = memchr(arg, '?', alen);
                part.text = lower_dup(arg, qm ? (size_t)(qm - arg) : alen);
                if (qm)
                    part.alt = lower_dup(qm + 1, (size_t)(close - qm - 1));
            } else if (c->kind == MP_AL_START_TIME) {
                part.text = strndup(arg, alen);
            }
            q = close + 1;
        } else if (c->kind == MP_AL_REQ || c->kind == MP_AL_RESP || c->kind == MP_AL_TRAILER) {
            rc = mp_set_err(err, "format: %%%.*s needs a header name in parentheses", (int)nlen,
                            start);
            goto fail;
        }
        if (*q == ':' && q[1] >= '0' && q[1] <= '9') {
            char *end;
            part.max_len = strtoul(q + 1, &end, 10);
            q = end;
        }
        if (*q != '%') {
            free(part.text);
            free(part.alt);
            rc = mp_set_err(err, "format: missing closing '%%' after %%%.*s at position %zu",
                            (int)nlen, start, (size_t)(p - fmt));
            goto fail;
        }
        if (add_literal(f, lit, (size_t)(p - lit)) < 0 || add_part(f, &part) < 0) {
            free(part.text);
            free(part.alt);
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        p = q + 1;
        lit = p;
    }
    if (add_literal(f, lit, (size_t)(p - lit)) < 0) {
        rc = MP_ERR_NOMEM;
        goto fail;
    }
    *out = f;
    return 0;
fail:
    mp_al_format_free(f);
    return rc < 0 ? rc : MP_ERR_PARSE;
}

int mp_al_format_parse_json(const char *const *keys, const char *const *values, size_t n,
                            struct mp_al_format **out, char **err)
{
    struct mp_al_format *f = calloc(1, sizeof(*f));
    if (!f)
        return MP_ERR_NOMEM;
    f->json_keys = calloc(n ? n : 1, sizeof(*f->json_keys));
    f->json_values = calloc(n ? n : 1, sizeof(*f->json_values));
    if (!f->json_keys || !f->json_values) {
        mp_al_format_free(f);
        return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = mp_al_format_parse(values[i], &f->json_values[i], err);
        if (rc == 0 && !(f->json_keys[i] = strdup(keys[i])))
            rc = MP_ERR_NOMEM;
        f->n_json = i + 1;
        if (rc < 0) {
            mp_err_prefix(err, "json_format[\"%s\"]", keys[i]);
            mp_al_format_free(f);
            return rc;
        }
    }
    *out = f;
    return 0;
}

void mp_al_format_free(struct mp_al_format *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_json; i++) {
        free(f->json_keys ? f->json_keys[i] : NULL);
        mp_al_format_free(f->json_values ? f->json_values[i] : NULL);
    }
    free(f->json_keys);
    free(f->json_values);
    for (size_t i = 0; i < f->n_parts; i++) {
        free(f->parts[i].text);
        free(f->parts[i].alt);
    }
    free(f->parts);
    free(f);
}

/* ---- rendering ------------------------------------------------------------------ */

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->cap == 0)
        return;
    size_t room = o->cap - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void put_str(struct out *o, const char *s, size_t max)
{
    if (!s || !*s) {
        put(o, "-", 1);
        return;
    }
    size_t n = strlen(s);
    if (max && n > max)
        n = max;
    put(o, s, n);
}

static void put_u64(struct out *o, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%" PRIu64, v);
    put(o, b, (size_t)n);
}

static void put_ms(struct out *o, int64_t us)
{
    if (us < 0)
        put(o, "-", 1);
    else
        put_u64(o, (uint64_t)us / 1000);
}

static void put_time(struct out *o, int64_t us, const char *fmt)
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char b[128];
    if (!fmt || !*fmt) {
        size_t n = strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(b + n, sizeof(b) - n, ".%03dZ", (int)((us / 1000) % 1000));
        put(o, b, n);
        return;
    }
    /* Envoy's %E3S / %f style fractions: expand the milliseconds ourselves */
    char f2[128];
    size_t k = 0;
    for (const char *c = fmt; *c && k + 8 < sizeof(f2); c++) {
        if (c[0] == '%' && c[1] == 'E' && c[2] >= '1' && c[2] <= '9' && c[3] == 'S') {
            k += (size_t)snprintf(f2 + k, sizeof(f2) - k, "%%S.%03d", (int)((us / 1000) % 1000));
            c += 3;
        } else {
            f2[k++] = *c;
        }
    }
    f2[k] = '\0';
    size_t n = strftime(b, sizeof(b), f2, &tm);
    put(o, b, n);
}

static const char *hdr(const struct mp_headers *h, const char *name, const char *alt)
{
    if (!h)
        return NULL;
    const char *v = mp_headers_value(h, name);
    if (!v && alt)
        v = mp_headers_value(h, alt);
    return v;
}

static void put_json_string(struct out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            put(o, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", ch);
            put(o, esc, 6);
        } else {
            put(o, s + i, 1);
        }
    }
    put(o, "\"", 1);
}

/* A value whose format is one numeric command prints as a JSON number, as
 * Envoy's json_format does; one command with nothing to show is null. */
static bool numeric_kind(int kind)
{
    return kind == MP_AL_RESPONSE_CODE || kind == MP_AL_BYTES_RECEIVED ||
           kind == MP_AL_BYTES_SENT || kind == MP_AL_DURATION ||
           kind == MP_AL_REQUEST_DURATION || kind == MP_AL_RESPONSE_DURATION;
}

static size_t render_json(const struct mp_al_format *f, const struct mp_al_record *r, struct out *o)
{
    put(o, "{", 1);
    for (size_t i = 0; i < f->n_json; i++) {
        const struct mp_al_format *v = f->json_values[i];
        char val[2048];
        size_t n = mp_al_format_render(v, r, val, sizeof(val));
        if (i)
            put(o, ",", 1);
        put_json_string(o, f->json_keys[i], strlen(f->json_keys[i]));
        put(o, ":", 1);
        bool single = v->n_parts == 1 && v->parts[0].kind != MP_AL_LITERAL;
        bool digits = n > 0 && strspn(val, "0123456789") == n;
        if (single && n == 1 && val[0] == '-')
            put(o, "null", 4);
        else if (single && numeric_kind(v->parts[0].kind) && digits)
            put(o, val, n);
        else
            put_json_string(o, val, n);
    }
    put(o, "}\n", 2);
    return o->len;
}

size_t mp_al_format_render(const struct mp_al_format *f, const struct mp_al_record *r, char *buf,
                           size_t cap)
{
    struct out o = {.p = buf, .cap = cap};
    if (cap)
        buf[0] = '\0';
    if (f->n_json)
        return render_json(f, r, &o);
    for (size_t i = 0; i < f->n_parts; i++) {
        const struct mp_al_part *p = &f->parts[i];
        switch (p->kind) {
        case MP_AL_LITERAL: put(&o, p->text, strlen(p->text)); break;
        case MP_AL_REQ: put_str(&o, hdr(r->req, p->text, p->alt), p->max_len); break;
        case MP_AL_RESP: put_str(&o, hdr(r->resp, p->text, p->alt), p->max_len); break;
        case MP_AL_TRAILER: put_str(&o, hdr(r->trailers, p->text, p->alt), p->max_len); break;
        case MP_AL_START_TIME: put_time(&o, r->start_us, p->text); break;
        case MP_AL_METHOD_PROTOCOL: put_str(&o, r->protocol, 0); break;
        case MP_AL_RESPONSE_CODE:
            put_u64(&o, (uint64_t)(r->response_code > 0 ? r->response_code : 0));
            break;
        case MP_AL_RESPONSE_FLAGS: put_str(&o, r->response_flags, 0); break;
        case MP_AL_BYTES_RECEIVED: put_u64(&o, r->bytes_received); break;
        case MP_AL_BYTES_SENT: put_u64(&o, r->bytes_sent); break;
        case MP_AL_DURATION: put_ms(&o, r->duration_us); break;
        case MP_AL_REQUEST_DURATION: put_ms(&o, r->request_duration_us); break;
        case MP_AL_RESPONSE_DURATION: put_ms(&o, r->response_duration_us); break;
        case MP_AL_UPSTREAM_HOST: put_str(&o, r->upstream_host, 0); break;
        case MP_AL_UPSTREAM_CLUSTER: put_str(&o, r->upstream_cluster, 0); break;
        case MP_AL_DOWNSTREAM_REMOTE_ADDRESS: put_str(&o, r->downstream_remote, 0); break;
        case MP_AL_DOWNSTREAM_REMOTE_ADDRESS_NO_PORT: {
            const char *a = r->downstream_remote;
            if (!a) {
                put(&o, "-", 1);
                break;
            }
            const char *colon = strrchr(a, ':');
            size_t n = colon ? (size_t)(colon - a) : strlen(a);
            if (n >= 2 && a[0] == '[') {
                a++;
                n -= 2;
            }
            put(&o, a, n);
            break;
        }
        case MP_AL_DOWNSTREAM_LOCAL_ADDRESS: put_str(&o, r->downstream_local, 0); break;
        case MP_AL_UPSTREAM_TRANSPORT_FAILURE_REASON: put(&o, "-", 1); break;
        case MP_AL_ROUTE_NAME: put_str(&o, r->route_name, 0); break;
        case MP_AL_DOWNSTREAM_PEER_URI_SAN: put_str(&o, r->downstream_peer_uri_san, 0); break;
        case MP_AL_REQUESTED_SERVER_NAME: put_str(&o, r->requested_server_name, 0); break;
        case MP_AL_GRPC_STATUS: {
            const char *g = hdr(r->trailers, "grpc-status", NULL);
            if (!g)
                g = hdr(r->resp, "grpc-status", NULL);
            put_str(&o, g, 0);
            break;
        }
        }
    }
    return o.len;
}

/* ---- files ---------------------------------------------------------------------- */

struct mp_access_log_file {
    struct mp_access_log_file *next;
    char *path;
    int fd;
    _Atomic uint32_t refs;
};

static pthread_mutex_t files_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mp_access_log_file *files;

static struct mp_access_log_file *file_open(const char *path, char **err)
{
    pthread_mutex_lock(&files_mu);
    for (struct mp_access_log_file *f = files; f; f = f->next) {
        if (strcmp(f->path, path) == 0) {
            atomic_fetch_add(&f->refs, 1);
            pthread_mutex_unlock(&files_mu);
            return f;
        }
    }
    struct mp_access_log_file *f = calloc(1, sizeof(*f));
    if (f)
        f->path = strdup(path);
    if (!f || !f->path) {
        if (f)
            free(f);
        pthread_mutex_unlock(&files_mu);
        mp_set_err(err, "path: out of memory");
        return NULL;
    }
    f->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        mp_set_err(err, "path: cannot open \"%s\": %s", path, strerror(errno));
        free(f->path);
        free(f);
        pthread_mutex_unlock(&files_mu);
        return NULL;
    }
    atomic_init(&f->refs, 1);
    f->next = files;
    files = f;
    pthread_mutex_unlock(&files_mu);
    return f;
}

static void file_ref(struct mp_access_log_file *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

static void file_unref(struct mp_access_log_file *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&files_mu);
    if (atomic_fetch_sub(&f->refs, 1) != 1) {
        pthread_mutex_unlock(&files_mu);
        return;
    }
    struct mp_access_log_file **pp = &files;
    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp)
        *pp = f->next;
    pthread_mutex_unlock(&files_mu);
    close(f->fd);
    free(f->path);
    free(f);
}

int mp_access_log_new(const char *path, const char *format, struct mp_access_log **out, char **err)
{
    if (!path || !*path)
        return mp_set_err(err, "path: must not be empty");
    struct mp_access_log *al = calloc(1, sizeof(*al));
    if (!al)
        return MP_ERR_NOMEM;
    int rc = mp_al_format_parse(format ? format : MP_ACCESS_LOG_DEFAULT_FORMAT, &al->format, err);
    if (rc < 0) {
        free(al);
        return rc;
    }
    al->file = file_open(path, err);
    if (!al->file) {
        mp_al_format_free(al->format);
        free(al);
        return MP_ERR_IO;
    }
    *out = al;
    return 0;
}

int mp_access_log_new_with_format(const char *path, struct mp_al_format *fmt,
                                  struct mp_access_log **out, char **err)
{
    struct mp_access_log *al = NULL;
    int rc = !path || !*path ? mp_set_err(err, "path: must not be empty") : 0;
    if (rc == 0 && !(al = calloc(1, sizeof(*al))))
        rc = MP_ERR_NOMEM;
    if (rc == 0 && !(al->file = file_open(path, err)))
        rc = MP_ERR_IO;
    if (rc < 0) {
        free(al);
        mp_al_format_free(fmt);
        return rc;
    }
    al->format = fmt;
    *out = al;
    return 0;
}

void mp_access_log_free(struct mp_access_log *al)
{
    if (!al)
        return;
    mp_al_format_free(al->format);
    file_unref(al->file);
    free(al);
}

/* ---- rings ------------------------------------------------------------------------ */

struct rec_hdr {
    struct mp_access_log_file *file; /* NULL: skip to the ring's start */
    uint64_t len;
};

struct mp_access_log_ring {
    struct mp_access_log_ring *next;
    uint8_t *buf;
    size_t cap;
    _Atomic uint64_t head; /* consumer position */
    _Atomic uint64_t tail; /* producer position */
    bool orphan;           /* its thread is gone: free after the last drain */
};

static pthread_mutex_t rings_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mp_access_log_ring *rings;
static _Thread_local struct mp_access_log_ring *my_ring;
static _Atomic uint64_t dropped;
static void (*wake_fn)(void *);
static void *wake_arg;

void mp_access_log_set_wakeup(void (*fn)(void *arg), void *arg)
{
    wake_fn = fn;
    wake_arg = arg;
}

int mp_access_log_thread_init(size_t capacity)
{
    struct mp_access_log_ring *r = calloc(1, sizeof(*r));
    if (!r)
        return MP_ERR_NOMEM;
    r->cap = (capacity + 15) & ~(size_t)15;
    if (r->cap < 4096)
        r->cap = 4096;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        free(r);
        return MP_ERR_NOMEM;
    }
    pthread_mutex_lock(&rings_mu);
    r->next = rings;
    rings = r;
    pthread_mutex_unlock(&rings_mu);
    my_ring = r;
    return 0;
}

static size_t drain_ring(struct mp_access_log_ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t lines = 0;
    struct iovec iov[64];
    int n_iov = 0;
    struct mp_access_log_file *cur = NULL;
    struct mp_access_log_file *unref[64];
    int n_unref = 0;
    while (head < tail) {
        size_t off = (size_t)(head % r->cap);
        struct rec_hdr h;
        memcpy(&h, r->buf + off, sizeof(h));
        if (!h.file) {
            head += r->cap - off;
            continue;
        }
        if ((cur && h.file != cur) || n_iov == 64 || n_unref == 64) {
            if (n_iov && writev(cur->fd, iov, n_iov) < 0) {
                /* a failing log file must not stop the proxy */
            }
            n_iov = 0;
            for (int i = 0; i < n_unref; i++)
                file_unref(unref[i]);
            n_unref = 0;
        }
        cur = h.file;
        iov[n_iov].iov_base = r->buf + off + sizeof(h);
        iov[n_iov].iov_len = h.len;
        n_iov++;
        unref[n_unref++] = h.file;
        head += sizeof(h) + ((h.len + 15) & ~(uint64_t)15);
        lines++;
    }
    if (n_iov && cur && writev(cur->fd, iov, n_iov) < 0) {
        /* ignored, as above */
    }
    for (int i = 0; i < n_unref; i++)
        file_unref(unref[i]);
    atomic_store_explicit(&r->head, head, memory_order_release);
    return lines;
}

void mp_access_log_thread_exit(void)
{
    struct mp_access_log_ring *r = my_ring;
    if (!r)
        return;
    my_ring = NULL;
    /* the flusher frees it after draining what is left */
    pthread_mutex_lock(&rings_mu);
    r->orphan = true;
    pthread_mutex_unlock(&rings_mu);
}

size_t mp_access_log_flush_all(void)
{
    size_t n = 0;
    pthread_mutex_lock(&rings_mu);
    struct mp_access_log_ring **pp = &rings;
    while (*pp) {
        struct mp_access_log_ring *r = *pp;
        n += drain_ring(r);
        if (r->orphan) {
            *pp = r->next;
            free(r->buf);
            free(r);
            continue;
        }
        pp = &r->next;
    }
    pthread_mutex_unlock(&rings_mu);
    return n;
}

uint64_t mp_access_log_dropped(void)
{
    return atomic_load(&dropped);
}

void mp_access_log_emit(const struct mp_access_log *al, const struct mp_al_record *rec)
{
    char line[4096];
    size_t len = mp_al_format_render(al->format, rec, line, sizeof(line));
    struct mp_access_log_ring *r = my_ring;
    if (!r) {
        /* no ring on this thread (main thread, tests): write directly */
        if (write(al->file->fd, line, len) < 0) {
            atomic_fetch_add(&dropped, 1);
        }
        return;
    }
    size_t need = sizeof(struct rec_hdr) + ((len + 15) & ~(size_t)15);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t off = (size_t)(tail % r->cap);
    size_t contiguous = r->cap - off;
    size_t used = (size_t)(tail - head);
    size_t extra = contiguous < need ? contiguous : 0;
    if (used + extra + need > r->cap) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    if (extra) {
        struct rec_hdr skip = {NULL, 0};
        memcpy(r->buf + off, &skip, sizeof(skip));
        tail += extra;
        off = 0;
    }
    struct rec_hdr h = {al->file, len};
    file_ref(al->file);
    memcpy(r->buf + off, &h, sizeof(h));
    memcpy(r->buf + off + sizeof(h), line, len);
    tail += need;
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    if (wake_fn && (size_t)(tail - head) > r->cap / 2 && (size_t)(tail - head) - need <= r->cap / 2)
        wake_fn(wake_arg);
}
