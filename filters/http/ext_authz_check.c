/*
 * ext_authz_check.c: CheckRequest building and CheckResponse reading (see
 * ext_authz_check.h). The request is built from stack and malloc'd
 * protobuf-c structs that point into the caller's strings, packed, and the
 * scaffolding freed: nothing in the message is copied twice.
 */
#include "ext_authz_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "proxy/mp_common.h"
#include "proxy/router_match.h"

bool mp_ext_authz_header_allowed(const struct mp_ext_authz_header_filter *filter, const char *name,
                                 size_t len)
{
    if (!filter)
        return true;
    bool ok = !filter->has_allowed;
    for (size_t i = 0; !ok && i < filter->n_allowed; i++)
        ok = mp_string_match_eval(&filter->allowed[i], name, len);
    for (size_t i = 0; ok && i < filter->n_disallowed; i++)
        if (mp_string_match_eval(&filter->disallowed[i], name, len))
            ok = false;
    return ok;
}

/* ---- request ----------------------------------------------------------- */

/* "1.2.3.4:80" / "[::1]:80" -> SocketAddress parts; false when not ip:port. */
static bool split_addr(const char *text, char *ip, size_t cap, uint32_t *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return false;
    const char *start = text;
    size_t n = (size_t)(colon - text);
    if (text[0] == '[') {
        if (n < 2 || text[n - 1] != ']')
            return false;
        start++;
        n -= 2;
    }
    if (n >= cap)
        return false;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p > 65535)
        return false;
    memcpy(ip, start, n);
    ip[n] = '\0';
    *port = (uint32_t)p;
    return true;
}

struct peer_parts {
    Envoy__Service__Auth__V3__AttributeContext__Peer peer;
    Envoy__Config__Core__V3__Address addr;
    Envoy__Config__Core__V3__SocketAddress sock;
    Envoy__Config__Core__V3__Pipe pipe;
    char ip[64];
};

static Envoy__Service__Auth__V3__AttributeContext__Peer *
peer_build(struct peer_parts *pp, const char *addr, const char *principal)
{
    Envoy__Service__Auth__V3__AttributeContext__Peer peer =
        ENVOY__SERVICE__AUTH__V3__ATTRIBUTE_CONTEXT__PEER__INIT;
    Envoy__Config__Core__V3__Address a = ENVOY__CONFIG__CORE__V3__ADDRESS__INIT;
    Envoy__Config__Core__V3__SocketAddress s = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT;
    Envoy__Config__Core__V3__Pipe p = ENVOY__CONFIG__CORE__V3__PIPE__INIT;
    pp->peer = peer;
    pp->addr = a;
    pp->sock = s;
    pp->pipe = p;
    uint32_t port;
    if (addr && split_addr(addr, pp->ip, sizeof(pp->ip), &port)) {
        pp->sock.address = pp->ip;
        pp->sock.port_specifier_case =
            ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
        pp->sock.port_value = port;
        pp->addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
        pp->addr.socket_address = &pp->sock;
        pp->peer.address = &pp->addr;
    } else if (addr && addr[0] == '/') {
        pp->pipe.path = (char *)addr;
        pp->addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE;
        pp->addr.pipe = &pp->pipe;
        pp->peer.address = &pp->addr;
    }
    if (principal)
        pp->peer.principal = (char *)principal;
    return &pp->peer;
}

/* The allowed headers as map entries, repeated names joined with ","
 * (Envoy's header map flattening). Pseudo-headers are left out: their
 * values travel in method/path/host. */
static int
headers_build(const struct mp_ext_authz_attrs *a,
              Envoy__Service__Auth__V3__AttributeContext__HttpRequest *http,
              Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry **ents_out,
              char ***joined_out, size_t *n_joined)
{
    const struct mp_headers *h = a->headers;
    size_t n = h ? h->n : 0;
    /* one more slot for x-envoy-auth-partial-body */
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry *ents =
        calloc(n + 1, sizeof(*ents));
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry **ptrs =
        calloc(n + 1, sizeof(*ptrs));
    char **joined = calloc(n ? n : 1, sizeof(*joined));
    if (!ents || !ptrs || !joined) {
        free(ents);
        free(ptrs);
        free(joined);
        return MP_ERR_NOMEM;
    }
    size_t k = 0, nj = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mp_header *hd = &h->v[i];
        if (hd->name[0] == ':' || !mp_ext_authz_header_allowed(a->filter, hd->name, hd->name_len))
            continue;
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(ents[j].key, hd->name) == 0;
        if (seen)
            continue; /* joined into the first occurrence below */
        Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry e =
            ENVOY__SERVICE__AUTH__V3__ATTRIBUTE_CONTEXT__HTTP_REQUEST__HEADERS_ENTRY__INIT;
        e.key = hd->name;
        e.value = hd->value;
        size_t total = hd->value_len, count = 0;
        for (size_t j = i; j < n; j++)
            if (strcmp(h->v[j].name, hd->name) == 0) {
                count++;
                if (j != i)
                    total += 1 + h->v[j].value_len;
            }
        if (count > 1) {
            char *v = malloc(total + 1);
            if (!v) {
                for (size_t j = 0; j < nj; j++)
                    free(joined[j]);
                free(joined);
                free(ents);
                free(ptrs);
                return MP_ERR_NOMEM;
            }
            size_t off = 0;
            for (size_t j = i; j < n; j++)
                if (strcmp(h->v[j].name, hd->name) == 0) {
                    if (off)
                        v[off++] = ',';
                    memcpy(v + off, h->v[j].value, h->v[j].value_len);
                    off += h->v[j].value_len;
                }
            v[off] = '\0';
            joined[nj++] = v;
            e.value = v;
        }
        ents[k] = e;
        ptrs[k] = &ents[k];
        k++;
    }
    if (a->with_body) {
        Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry e =
            ENVOY__SERVICE__AUTH__V3__ATTRIBUTE_CONTEXT__HTTP_REQUEST__HEADERS_ENTRY__INIT;
        e.key = "x-envoy-auth-partial-body";
        e.value = a->body_partial ? "true" : "false";
        ents[k] = e;
        ptrs[k] = &ents[k];
        k++;
    }
    http->headers = ptrs;
    http->n_headers = k;
    *ents_out = ents;
    *joined_out = joined;
    *n_joined = nj;
    return 0;
}

int mp_ext_authz_check_request_pack(const struct mp_ext_authz_attrs *a, uint8_t **out, size_t *len)
{
    Envoy__Service__Auth__V3__CheckRequest req = ENVOY__SERVICE__AUTH__V3__CHECK_REQUEST__INIT;
    Envoy__Service__Auth__V3__AttributeContext ac =
        ENVOY__SERVICE__AUTH__V3__ATTRIBUTE_CONTEXT__INIT;
    Envoy__Service__Auth__V3__AttributeContext__Request rq =
        ENVOY__SERVICE__AUTH__V3__ATTRIBUTE_CONTEXT__REQUEST__INIT;
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest http =
        ENVOY__SERVICE__AUTH__V3__ATTRIBUTE_CONTEXT__HTTP_REQUEST__INIT;
    Envoy__Service__Auth__V3__AttributeContext__TLSSession tls =
        ENVOY__SERVICE__AUTH__V3__ATTRIBUTE_CONTEXT__TLSSESSION__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    struct peer_parts src, dst;
    req.attributes = &ac;
    ac.source = peer_build(&src, a->source, a->source_principal);
    ac.destination = peer_build(&dst, a->destination, NULL);
    ac.request = &rq;
    rq.http = &http;
    if (a->time_us > 0) {
        ts.seconds = a->time_us / 1000000;
        ts.nanos = (int32_t)(a->time_us % 1000000) * 1000;
        rq.time = &ts;
    }
    if (a->sni) {
        tls.sni = (char *)a->sni;
        ac.tls_session = &tls;
    }

    const struct mp_headers *h = a->headers;
    const char *v;
    if (h && (v = mp_headers_value(h, ":method")))
        http.method = (char *)v;
    if (h && (v = mp_headers_value(h, ":authority")))
        http.host = (char *)v;
    if (h && (v = mp_headers_value(h, ":scheme")))
        http.scheme = (char *)v;
    if (h && (v = mp_headers_value(h, "x-request-id")))
        http.id = (char *)v;
    if (a->protocol)
        http.protocol = (char *)a->protocol;
    http.size = -1;
    if (h && (v = mp_headers_value(h, "content-length"))) {
        char *end;
        long long cl = strtoll(v, &end, 10);
        if (*v && !*end && cl >= 0)
            http.size = cl;
    }

    int rc = MP_ERR_NOMEM;
    char **joined = NULL, *body = NULL;
    size_t n_joined = 0;
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry *ents = NULL;
    Envoy__Service__Auth__V3__AttributeContext__ContextExtensionsEntry *ext = NULL, **extp = NULL;
    /* path is the request target as received, query included (query and
     * fragment stay empty, as in Envoy) */
    if (h && (v = mp_headers_value(h, ":path")))
        http.path = (char *)v;
    rc = headers_build(a, &http, &ents, &joined, &n_joined);
    if (rc)
        goto out;
    rc = MP_ERR_NOMEM;
    if (a->with_body && a->body_as_bytes) {
        http.raw_body.data = (uint8_t *)a->body;
        http.raw_body.len = a->body_len;
    } else if (a->with_body) {
        /* a proto string: NUL-terminated copy */
        body = malloc(a->body_len + 1);
        if (!body)
            goto out;
        if (a->body_len)
            memcpy(body, a->body, a->body_len);
        body[a->body_len] = '\0';
        http.body = body;
    }
    if (a->n_context_extensions) {
        ext = calloc(a->n_context_extensions, sizeof(*ext));
        extp = calloc(a->n_context_extensions, sizeof(*extp));
        if (!ext || !extp)
            goto out;
        for (size_t i = 0; i < a->n_context_extensions; i++) {
            Envoy__Service__Auth__V3__AttributeContext__ContextExtensionsEntry e =
                ENVOY__SERVICE__AUTH__V3__ATTRIBUTE_CONTEXT__CONTEXT_EXTENSIONS_ENTRY__INIT;
            e.key = (char *)a->context_extensions[2 * i];
            e.value = (char *)a->context_extensions[2 * i + 1];
            ext[i] = e;
            extp[i] = &ext[i];
        }
        ac.context_extensions = extp;
        ac.n_context_extensions = a->n_context_extensions;
    }
    size_t n = envoy__service__auth__v3__check_request__get_packed_size(&req);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        goto out;
    *len = envoy__service__auth__v3__check_request__pack(&req, buf);
    *out = buf;
    rc = 0;
out:
    free(ents);
    free(http.headers);
    for (size_t i = 0; i < n_joined; i++)
        free(joined[i]);
    free(joined);
    free(ext);
    free(extp);
    free(body);
    return rc;
}

/* ---- response ---------------------------------------------------------- */

void mp_ext_authz_result_init(struct mp_ext_authz_result *r)
{
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < MP_EXT_AUTHZ_N_ACTIONS; i++)
        mp_headers_init(&r->upstream[i]);
    mp_headers_init(&r->remove);
    mp_headers_init(&r->client);
}

void mp_ext_authz_result_clear(struct mp_ext_authz_result *r)
{
    for (int i = 0; i < MP_EXT_AUTHZ_N_ACTIONS; i++)
        mp_headers_clear(&r->upstream[i]);
    mp_headers_clear(&r->remove);
    mp_headers_clear(&r->client);
    free(r->body);
    mp_ext_authz_result_init(r);
}

/* HeaderValueOption.append is deprecated but authorization servers still
 * send it; Envoy honours it over append_action when present. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static bool option_has_append(const Envoy__Config__Core__V3__HeaderValueOption *o)
{
    return o->append != NULL;
}

static int option_action(const Envoy__Config__Core__V3__HeaderValueOption *o)
{
    if (o->append)
        return o->append->value ? MP_EXT_AUTHZ_APPEND : MP_EXT_AUTHZ_SET;
    switch (o->append_action) {
    case ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__ADD_IF_ABSENT:
        return MP_EXT_AUTHZ_ADD_IF_ABSENT;
    case ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD:
        return MP_EXT_AUTHZ_SET;
    case ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS:
        return MP_EXT_AUTHZ_SET_IF_EXISTS;
    default: return MP_EXT_AUTHZ_APPEND;
    }
}
#pragma GCC diagnostic pop

static int header_value(const Envoy__Config__Core__V3__HeaderValue *hv, const char **v, size_t *n)
{
    if (!hv || !hv->key || !hv->key[0])
        return MP_ERR_INVAL;
    if (hv->raw_value.len) {
        *v = (const char *)hv->raw_value.data;
        *n = hv->raw_value.len;
    } else {
        *v = hv->value ? hv->value : "";
        *n = strlen(*v);
    }
    return 0;
}

int mp_ext_authz_check_response_parse(const uint8_t *data, size_t len,
                                      struct mp_ext_authz_result *r)
{
    Envoy__Service__Auth__V3__CheckResponse *resp =
        envoy__service__auth__v3__check_response__unpack(NULL, len, data);
    if (!resp) {
        r->verdict = MP_EXT_AUTHZ_ERROR;
        return MP_ERR_PARSE;
    }
    int rc = 0;
    r->grpc_code = resp->status ? resp->status->code : 0;
    r->verdict = r->grpc_code == 0 ? MP_EXT_AUTHZ_OK : MP_EXT_AUTHZ_DENIED;
    const char *v;
    size_t vn;
    if (r->verdict == MP_EXT_AUTHZ_OK &&
        resp->http_response_case ==
            ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_OK_RESPONSE &&
        resp->ok_response) {
        const Envoy__Service__Auth__V3__OkHttpResponse *ok = resp->ok_response;
        for (size_t i = 0; i < ok->n_headers && !rc; i++) {
            const Envoy__Config__Core__V3__HeaderValueOption *o = ok->headers[i];
            if (header_value(o->header, &v, &vn))
                continue;
            rc = mp_headers_add(&r->upstream[option_action(o)], o->header->key,
                                strlen(o->header->key), v, vn);
        }
        for (size_t i = 0; i < ok->n_headers_to_remove && !rc; i++)
            rc = mp_headers_add(&r->remove, ok->headers_to_remove[i],
                                strlen(ok->headers_to_remove[i]), "", 0);
        for (size_t i = 0; i < ok->n_response_headers_to_add && !rc; i++) {
            const Envoy__Config__Core__V3__HeaderValueOption *o = ok->response_headers_to_add[i];
            if (header_value(o->header, &v, &vn))
                continue;
            rc = mp_headers_add(&r->client, o->header->key, strlen(o->header->key), v, vn);
        }
    } else if (r->verdict == MP_EXT_AUTHZ_DENIED &&
               resp->http_response_case ==
                   ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE &&
               resp->denied_response) {
        const Envoy__Service__Auth__V3__DeniedHttpResponse *d = resp->denied_response;
        if (d->status && d->status->code >= 100 && d->status->code <= 599)
            r->http_status = (int)d->status->code;
        for (size_t i = 0; i < d->n_headers && !rc; i++) {
            const Envoy__Config__Core__V3__HeaderValueOption *o = d->headers[i];
            if (header_value(o->header, &v, &vn))
                continue;
            if (option_action(o) == MP_EXT_AUTHZ_APPEND && option_has_append(o))
                rc = mp_headers_add(&r->client, o->header->key, strlen(o->header->key), v, vn);
            else {
                char *val = strndup(v, vn);
                rc = val ? mp_headers_set(&r->client, o->header->key, val, vn) : MP_ERR_NOMEM;
                free(val);
            }
        }
        if (!rc && d->body && d->body[0]) {
            r->body = strdup(d->body);
            if (!r->body)
                rc = MP_ERR_NOMEM;
        }
    }
    envoy__service__auth__v3__check_response__free_unpacked(resp, NULL);
    return rc;
}

int mp_ext_authz_apply_upstream(const struct mp_ext_authz_result *r, struct mp_headers *h)
{
    for (size_t i = 0; i < r->remove.n; i++)
        if (r->remove.v[i].name[0] != ':')
            mp_headers_remove(h, r->remove.v[i].name);
    int rc = 0;
    const struct mp_headers *l = &r->upstream[MP_EXT_AUTHZ_SET];
    for (size_t i = 0; i < l->n && !rc; i++)
        rc = mp_headers_set(h, l->v[i].name, l->v[i].value, l->v[i].value_len);
    l = &r->upstream[MP_EXT_AUTHZ_SET_IF_EXISTS];
    for (size_t i = 0; i < l->n && !rc; i++)
        if (mp_headers_get(h, l->v[i].name))
            rc = mp_headers_set(h, l->v[i].name, l->v[i].value, l->v[i].value_len);
    l = &r->upstream[MP_EXT_AUTHZ_ADD_IF_ABSENT];
    for (size_t i = 0; i < l->n && !rc; i++)
        if (!mp_headers_get(h, l->v[i].name))
            rc =
                mp_headers_add(h, l->v[i].name, l->v[i].name_len, l->v[i].value, l->v[i].value_len);
    l = &r->upstream[MP_EXT_AUTHZ_APPEND];
    for (size_t i = 0; i < l->n && !rc; i++)
        rc = mp_headers_add(h, l->v[i].name, l->v[i].name_len, l->v[i].value, l->v[i].value_len);
    return rc;
}
