/* tls_inspector.c: ClientHello parsing from peeked bytes (SNI, ALPN, versions). */
#include "proxy/tls_inspector.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"

#define REC_HANDSHAKE          0x16
#define HS_CLIENT_HELLO        0x01
#define EXT_SERVER_NAME        0x0000
#define EXT_ALPN               0x0010
#define EXT_SUPPORTED_VERSIONS 0x002b
#define MAX_RECORD             (16384u + 2048u) /* TLSCiphertext limit; a plaintext hello is below it */

/* A bounds-checked reader over one run of bytes. */
struct rd {
    const uint8_t *p;
    size_t len;
    bool bad;
};

static uint32_t rd_u(struct rd *r, size_t n)
{
    if (r->bad || r->len < n) {
        r->bad = true;
        return 0;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | r->p[i];
    r->p += n;
    r->len -= n;
    return v;
}

/* Splits off the next n bytes as their own reader. */
static struct rd rd_sub(struct rd *r, size_t n)
{
    struct rd s = {r->p, n, false};
    if (r->bad || r->len < n) {
        r->bad = true;
        s.bad = true;
        s.len = 0;
        return s;
    }
    r->p += n;
    r->len -= n;
    return s;
}

static void init_out(struct mp_client_hello *out)
{
    memset(out, 0, sizeof(*out));
    out->transport = "raw_buffer";
}

static void set_tls(struct mp_client_hello *out)
{
    out->is_tls = true;
    out->transport = "tls";
}

static bool parse_sni(struct rd ext, struct mp_client_hello *out)
{
    struct rd list = rd_sub(&ext, rd_u(&ext, 2));
    while (!list.bad && list.len > 0) {
        uint32_t type = rd_u(&list, 1);
        struct rd name = rd_sub(&list, rd_u(&list, 2));
        if (list.bad)
            return false;
        if (type != 0 || out->sni[0] != 0)
            continue;
        if (name.len == 0 || name.len >= sizeof(out->sni) || memchr(name.p, 0, name.len))
            return false;
        for (size_t i = 0; i < name.len; i++) {
            char c = (char)name.p[i];
            out->sni[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        out->sni[name.len] = 0;
    }
    return !list.bad && !ext.bad;
}

static bool parse_alpn(struct rd ext, struct mp_client_hello *out)
{
    struct rd list = rd_sub(&ext, rd_u(&ext, 2));
    size_t used = 0;
    while (!list.bad && list.len > 0) {
        struct rd proto = rd_sub(&list, rd_u(&list, 1));
        if (list.bad || proto.len == 0)
            return false;
        if (out->n_alpn == MP_TLS_INSPECTOR_MAX_ALPN ||
            used + proto.len + 1 > sizeof(out->alpn_space)) {
            out->n_alpn_dropped++;
            continue;
        }
        char *dst = out->alpn_space + used;
        memcpy(dst, proto.p, proto.len);
        dst[proto.len] = 0;
        used += proto.len + 1;
        out->alpn[out->n_alpn++] = dst;
    }
    return !list.bad && !ext.bad;
}

static bool parse_versions(struct rd ext, struct mp_client_hello *out)
{
    struct rd list = rd_sub(&ext, rd_u(&ext, 1));
    while (!list.bad && list.len >= 2)
        if (rd_u(&list, 2) == 0x0304)
            out->offers_tls13 = true;
    return !list.bad && list.len == 0;
}

/* Parses a ClientHello body (after the 4-byte handshake header). */
static bool parse_hello(const uint8_t *p, size_t len, struct mp_client_hello *out)
{
    struct rd r = {p, len, false};
    out->legacy_version = (uint16_t)rd_u(&r, 2);
    rd_sub(&r, 32); /* random */
    struct rd sid = rd_sub(&r, rd_u(&r, 1));
    struct rd suites = rd_sub(&r, rd_u(&r, 2));
    struct rd comp = rd_sub(&r, rd_u(&r, 1));
    if (r.bad || sid.len > 32 || suites.len < 2 || suites.len % 2 != 0 || comp.len < 1 ||
        (out->legacy_version >> 8) != 3)
        return false;
    if (r.len == 0)
        return true; /* no extensions (very old clients) */
    struct rd exts = rd_sub(&r, rd_u(&r, 2));
    if (r.bad || r.len != 0)
        return false;
    while (exts.len > 0) {
        uint32_t type = rd_u(&exts, 2);
        struct rd ext = rd_sub(&exts, rd_u(&exts, 2));
        if (exts.bad)
            return false;
        bool ok = true;
        if (type == EXT_SERVER_NAME)
            ok = parse_sni(ext, out);
        else if (type == EXT_ALPN)
            ok = parse_alpn(ext, out);
        else if (type == EXT_SUPPORTED_VERSIONS)
            ok = parse_versions(ext, out);
        if (!ok)
            return false;
    }
    return true;
}

int mp_tls_inspect(const uint8_t *data, size_t len, struct mp_client_hello *out)
{
    init_out(out);
    if (len == 0)
        return MP_ERR_AGAIN;
    /* Anything but a handshake record with a TLS 1.x record version is not TLS;
     * decide as early as the bytes allow so plaintext is not held up. */
    if (data[0] != REC_HANDSHAKE)
        return 0;
    if (len >= 2 && data[1] != 3)
        return 0;
    if (len < 5)
        return MP_ERR_AGAIN;
    size_t rec_len = (size_t)data[3] << 8 | data[4];
    if (rec_len == 0 || rec_len > MAX_RECORD || (len >= 6 && data[5] != HS_CLIENT_HELLO))
        return 0;

    /* Common case: the whole hello is in the first record. */
    if (rec_len >= 4 && len >= 9) {
        size_t hs_len = (size_t)data[6] << 16 | (size_t)data[7] << 8 | data[8];
        size_t need = hs_len + 4; /* handshake header + body */
        if (need + 5 > MP_TLS_INSPECTOR_MAX_HELLO)
            return MP_ERR_LIMIT;
        if (rec_len >= need) {
            if (len < 5 + need)
                return MP_ERR_AGAIN;
            out->hello_len = need;
            if (parse_hello(data + 9, hs_len, out))
                set_tls(out);
            else
                init_out(out);
            return 0;
        }
    }

    /* The hello (maybe even its 4-byte header) spans records: gather the
     * handshake bytes from each record in turn. */
    uint8_t hdr[4], *hs = NULL;
    size_t got = 0, need = 0, off = 0;
    int rc = 0;
    while (need == 0 || got < need) {
        /* The caller peeks at most MAX_HELLO bytes (Envoy's buffer size): a
         * hello that needs more raw bytes than that is too large. */
        if (off + 5 > MP_TLS_INSPECTOR_MAX_HELLO) {
            rc = MP_ERR_LIMIT;
            goto out;
        }
        if (off + 5 > len) {
            rc = MP_ERR_AGAIN;
            goto out;
        }
        const uint8_t *h = data + off;
        size_t rl = (size_t)h[3] << 8 | h[4];
        if (h[0] != REC_HANDSHAKE || h[1] != 3 || rl == 0 || rl > MAX_RECORD)
            goto not_tls;
        if (off + 5 + rl > MP_TLS_INSPECTOR_MAX_HELLO) {
            rc = MP_ERR_LIMIT;
            goto out;
        }
        if (off + 5 + rl > len) {
            rc = MP_ERR_AGAIN;
            goto out;
        }
        for (size_t i = 0; i < rl;) {
            if (need == 0) {
                hdr[got++] = h[5 + i++];
                if (got < 4)
                    continue;
                if (hdr[0] != HS_CLIENT_HELLO)
                    goto not_tls;
                need = ((size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3]) + 4;
                if (need + 5 > MP_TLS_INSPECTOR_MAX_HELLO) {
                    rc = MP_ERR_LIMIT;
                    goto out;
                }
                if ((hs = malloc(need)) == NULL) {
                    rc = MP_ERR_AGAIN; /* out of memory: try again on the next event */
                    goto out;
                }
                memcpy(hs, hdr, 4);
                continue;
            }
            if (got == need) /* more handshake data after the hello: not a client */
                goto not_tls;
            size_t take = MP_MIN(rl - i, need - got);
            memcpy(hs + got, h + 5 + i, take);
            got += take;
            i += take;
        }
        off += 5 + rl;
    }
    out->hello_len = need;
    if (parse_hello(hs + 4, need - 4, out))
        set_tls(out);
    else
        init_out(out);
    goto out;
not_tls:
    init_out(out);
    rc = 0;
out:
    free(hs);
    return rc;
}

bool mp_client_hello_has_alpn(const struct mp_client_hello *ch, const char *p)
{
    for (size_t i = 0; i < ch->n_alpn; i++)
        if (strcmp(ch->alpn[i], p) == 0)
            return true;
    return false;
}

static void bump(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void mp_tls_inspector_count(struct mp_tls_inspector_stats *s, int rc,
                            const struct mp_client_hello *ch)
{
    if (rc == MP_ERR_AGAIN)
        return;
    if (rc == MP_ERR_LIMIT) {
        bump(&s->client_hello_too_large);
        return;
    }
    if (!ch->is_tls) {
        bump(&s->tls_not_found);
        return;
    }
    bump(&s->tls_found);
    bump(ch->sni[0] != 0 ? &s->sni_found : &s->sni_not_found);
    bump(ch->n_alpn > 0 ? &s->alpn_found : &s->alpn_not_found);
}
