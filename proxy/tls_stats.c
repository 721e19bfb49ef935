/* tls_stats.c: struct mp_tls_stats published in the stats registry. */
#include <stdio.h>

#include "proxy/mp_common.h"
#include "proxy/stats.h"
#include "proxy/tls_context.h"

/* The registry calls this at render time with a pointer to one counter. */
static uint64_t read_cell(void *arg)
{
    return atomic_load_explicit((_Atomic uint64_t *)arg, memory_order_relaxed);
}

int mp_tls_stats_register(struct mp_stats *reg, const char *prefix, struct mp_tls_stats *s)
{
    static const char *const names[MP_TLS_STATS_COUNT] = MP_TLS_STATS_NAMES;
    _Atomic uint64_t *cells[MP_TLS_STATS_COUNT] = {
        &s->handshake,       &s->connection_error,      &s->fail_verify_error,
        &s->fail_verify_san, &s->fail_verify_cert_hash, &s->fail_verify_no_cert,
        &s->no_certificate,  &s->session_reused,
    };
    for (unsigned i = 0; i < MP_TLS_STATS_COUNT; i++) {
        char name[512];
        if ((size_t)snprintf(name, sizeof(name), "%sssl.%s", prefix, names[i]) >= sizeof(name))
            return MP_ERR_INVAL;
        int rc = mp_stats_register_fn(reg, name, false, read_cell, cells[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
