/*
 * ads_sotw.c: state-of-the-world xDS. Every request of a type carries the
 * whole subscription, the last accepted version and the last nonce; every
 * response is the whole set of resources the server has for the request
 * (for LDS and CDS, everything: absence means removal).
 */
#include "ads_sotw.h"

#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "log.h"
#include "mp_common.h"

/* google.rpc.Code INVALID_ARGUMENT, what Envoy puts in a NACK. */
#define RPC_INVALID_ARGUMENT 3

int mp_ads_sotw_request(struct mp_ads_session *s, struct ads_type *t, const char *error)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    envoy__service__discovery__v3__discovery_request__init(&req);
    Google__Rpc__Status status;
    google__rpc__status__init(&status);
    req.version_info = t->version ? t->version : "";
    req.type_url = t->type_url;
    req.response_nonce = t->nonce ? t->nonce : "";
    if (!s->node_sent)
        req.node = (Envoy__Config__Core__V3__Node *)s->node;
    if (!t->wildcard) {
        req.n_resource_names = t->wanted.n;
        req.resource_names = t->wanted.v;
    }
    if (error) {
        status.code = RPC_INVALID_ARGUMENT;
        status.message = (char *)error;
        req.error_detail = &status;
    }
    int rc = mp_ads_queue_push(s, &req.base);
    if (rc)
        return rc;
    s->node_sent = true;
    t->sent = true;
    t->requested_ever = true;
    return 0;
}

/* Resources of a response that the client keeps: all of them for a
 * wildcard type, only the subscribed ones otherwise (a server may send
 * more; Envoy ignores those). */
static int select_wanted(const struct ads_type *t, const struct ads_decoded *d,
                         struct mp_xds_resource **out, size_t *n_out)
{
    struct mp_xds_resource *v = calloc(d->n ? d->n : 1, sizeof(*v));
    if (!v)
        return MP_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++)
        if (t->wildcard || mp_ads_names_has(&t->wanted, d->res[i].name))
            v[k++] = d->res[i];
    *out = v;
    *n_out = k;
    return 0;
}

/* For a wildcard type, held names missing from the response are removed. */
static int absent_names(const struct ads_type *t, const struct mp_xds_resource *res, size_t n,
                        struct mp_ads_names *out)
{
    if (!t->wildcard)
        return 0;
    struct mp_ads_names present = MP_ADS_NAMES_INIT;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = mp_ads_names_add(&present, res[i].name);
    for (size_t i = 0; i < t->n_held && !rc; i++)
        if (!mp_ads_names_has(&present, t->held[i].name))
            rc = mp_ads_names_add(out, t->held[i].name);
    mp_ads_names_clear(&present);
    return rc;
}

/* Index of res within d (to find its deps). */
static size_t decoded_index(const struct ads_decoded *d, const struct mp_xds_resource *r)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->res[i].msg == r->msg)
            return i;
    return 0;
}

/* The consumer accepted: make the response the new state of t. */
static int accept(struct ads_type *t, const char *version, struct ads_decoded *d,
                  const struct mp_xds_resource *res, size_t n, const struct mp_ads_names *removed)
{
    char *v = strdup(version);
    if (!v)
        return MP_ERR_NOMEM;
    free(t->version);
    t->version = v;
    for (size_t i = 0; i < removed->n; i++)
        mp_ads_held_remove(t, removed->v[i]);
    /* res is d->res filtered, in order: a cursor finds each one's deps in
     * O(n) overall (a search per resource made 10,000 clusters O(n^2)) */
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < d->n && d->res[j].msg != res[i].msg)
            j++;
        size_t at = j < d->n ? j : decoded_index(d, &res[i]);
        int rc = mp_ads_held_put(t, res[i].name, version, &d->deps[at]);
        if (rc)
            return rc;
    }
    return 0;
}

int mp_ads_sotw_on_message(struct mp_ads_session *s, const uint8_t *buf, size_t len)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *resp =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);
    if (!resp)
        return MP_ERR_PROTO;
    struct ads_type *t = mp_ads_type_find(s, resp->type_url);
    if (!t) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return 0;
    }
    char *nonce = strdup(resp->nonce);
    if (!nonce) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return MP_ERR_NOMEM;
    }
    free(t->nonce);
    t->nonce = nonce;
    t->received_ever = true;

    struct ads_decoded d;
    struct mp_xds_resource *kept = NULL;
    size_t n_kept = 0;
    struct mp_ads_names removed = MP_ADS_NAMES_INIT;
    char *err = NULL;
    int rc = mp_ads_decoded_init(&d, resp->n_resources);
    if (rc) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return rc;
    }
    for (size_t i = 0; i < resp->n_resources && !rc; i++)
        rc = mp_ads_decode_any(t, resp->resources[i], NULL, resp->version_info, &d, i, &err);
    if (!rc)
        rc = mp_ads_check_duplicates(&d, &err);
    if (rc == MP_ERR_NOMEM)
        goto out;
    if (!rc) {
        rc = select_wanted(t, &d, &kept, &n_kept);
        if (!rc)
            rc = absent_names(t, kept, n_kept, &removed);
        if (rc)
            goto out;
        struct mp_xds_update up = {
            .type_url = t->type_url,
            .kind = MP_XDS_UPDATE_RESPONSE,
            .mode = MP_XDS_SOTW,
            .version_info = resp->version_info,
            .nonce = resp->nonce,
            .resources = kept,
            .n_resources = n_kept,
            .removed = (const char *const *)removed.v,
            .n_removed = removed.n,
            .complete = t->wildcard,
        };
        rc = s->ops->on_update(s->ctx, &up, &err);
        if (rc && !err)
            mp_set_err(&err, "%s version %s rejected: %s", t->type_url, resp->version_info,
                       mp_strerror(rc));
    }
    if (rc) {
        /* NACK: previous version stays, the nonce says which response. */
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "xds: rejecting %s version %s: %s", t->type_url,
               resp->version_info, err ? err : "rejected");
        rc = mp_ads_sotw_request(s, t, err ? err : "rejected");
        goto out;
    }
    rc = accept(t, resp->version_info, &d, kept, n_kept, &removed);
    if (!rc)
        rc = mp_ads_sotw_request(s, t, NULL);
    if (!rc)
        rc = mp_ads_update_child(s, t);
out:
    free(err);
    free(kept);
    mp_ads_names_clear(&removed);
    mp_ads_decoded_free(&d);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}
