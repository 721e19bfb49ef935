/*
 * ads_delta.c: incremental xDS. Requests carry subscription changes and
 * (first of a stream) the versions the client already holds; responses
 * carry only changed resources, each with its own version, and the names
 * removed.
 */
#include "ads_delta.h"

#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "log.h"
#include "mp_common.h"

#define RPC_INVALID_ARGUMENT 3

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest DeltaReq;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry IrvEntry;

int mp_ads_delta_request(struct mp_ads_session *s, struct ads_type *t, const char *nonce,
                         const char *error)
{
    DeltaReq req;
    envoy__service__discovery__v3__delta_discovery_request__init(&req);
    Google__Rpc__Status status;
    google__rpc__status__init(&status);
    struct mp_ads_names sub = MP_ADS_NAMES_INIT, unsub = MP_ADS_NAMES_INIT;
    IrvEntry *irv = NULL;
    IrvEntry **irv_ptrs = NULL;
    int rc = 0;

    req.type_url = t->type_url;
    if (!s->node_sent)
        req.node = (Envoy__Config__Core__V3__Node *)s->node;
    if (nonce)
        req.response_nonce = (char *)nonce;
    if (error) {
        status.code = RPC_INVALID_ARGUMENT;
        status.message = (char *)error;
        req.error_detail = &status;
    }
    /* A wildcard type subscribes with an empty list on the first request of
     * the stream (the legacy wildcard form every server understands). */
    if (!t->wildcard) {
        rc = mp_ads_names_minus(&sub, &t->wanted, &t->told);
        if (!rc)
            rc = mp_ads_names_minus(&unsub, &t->told, &t->wanted);
        if (rc)
            goto out;
        req.n_resource_names_subscribe = sub.n;
        req.resource_names_subscribe = sub.v;
        req.n_resource_names_unsubscribe = unsub.n;
        req.resource_names_unsubscribe = unsub.v;
    }
    if (!t->sent && t->n_held) {
        irv = calloc(t->n_held, sizeof(*irv));
        irv_ptrs = calloc(t->n_held, sizeof(*irv_ptrs));
        if (!irv || !irv_ptrs) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < t->n_held; i++) {
            IrvEntry e;
            envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
                &e);
            e.key = t->held[i].name;
            e.value = t->held[i].version;
            irv[i] = e;
            irv_ptrs[i] = &irv[i];
        }
        req.n_initial_resource_versions = t->n_held;
        req.initial_resource_versions = irv_ptrs;
    }
    rc = mp_ads_queue_push(s, &req.base);
    if (rc)
        goto out;
    if (!t->wildcard)
        rc = mp_ads_names_copy(&t->told, &t->wanted);
    s->node_sent = true;
    t->sent = true;
    t->requested_ever = true;
out:
    free(irv);
    free(irv_ptrs);
    mp_ads_names_clear(&sub);
    mp_ads_names_clear(&unsub);
    return rc;
}

/* removed names of the response that the client holds, both fields */
static int held_removed(const struct ads_type *t,
                        const Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *resp,
                        struct mp_ads_names *out)
{
    int rc = 0;
    for (size_t i = 0; i < resp->n_removed_resources && !rc; i++)
        if (mp_ads_held_find(t, resp->removed_resources[i]))
            rc = mp_ads_names_add(out, resp->removed_resources[i]);
    for (size_t i = 0; i < resp->n_removed_resource_names && !rc; i++) {
        const char *n = resp->removed_resource_names[i]->name;
        if (mp_ads_held_find(t, n))
            rc = mp_ads_names_add(out, n);
    }
    return rc;
}

int mp_ads_delta_on_message(struct mp_ads_session *s, const uint8_t *buf, size_t len)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *resp =
        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
    if (!resp)
        return MP_ERR_PROTO;
    struct ads_type *t = mp_ads_type_find(s, resp->type_url);
    if (!t) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return 0;
    }
    t->received_ever = true;

    struct ads_decoded d;
    struct mp_xds_resource *kept = NULL;
    size_t *kept_idx = NULL;
    size_t n_kept = 0;
    struct mp_ads_names removed = MP_ADS_NAMES_INIT;
    char *err = NULL;
    int rc = mp_ads_decoded_init(&d, resp->n_resources);
    if (rc) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return rc;
    }
    for (size_t i = 0; i < resp->n_resources && !rc; i++) {
        const Envoy__Service__Discovery__V3__Resource *r = resp->resources[i];
        rc = mp_ads_decode_any(t, r->resource, r->name, r->version, &d, i, &err);
    }
    if (!rc)
        rc = mp_ads_check_duplicates(&d, &err);
    if (rc == MP_ERR_NOMEM)
        goto out;
    if (!rc) {
        kept = calloc(d.n ? d.n : 1, sizeof(*kept));
        kept_idx = calloc(d.n ? d.n : 1, sizeof(*kept_idx));
        if (!kept || !kept_idx || held_removed(t, resp, &removed)) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
        /* A named type ignores what it did not ask for. */
        for (size_t i = 0; i < d.n; i++)
            if (t->wildcard || mp_ads_names_has(&t->wanted, d.res[i].name)) {
                kept_idx[n_kept] = i;
                kept[n_kept++] = d.res[i];
            }
        struct mp_xds_update up = {
            .type_url = t->type_url,
            .kind = MP_XDS_UPDATE_RESPONSE,
            .mode = MP_XDS_DELTA,
            .version_info = resp->system_version_info,
            .nonce = resp->nonce,
            .resources = kept,
            .n_resources = n_kept,
            .removed = (const char *const *)removed.v,
            .n_removed = removed.n,
        };
        rc = s->ops->on_update(s->ctx, &up, &err);
        if (rc && !err)
            mp_set_err(&err, "%s update rejected: %s", t->type_url, mp_strerror(rc));
    }
    if (rc) {
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "xds: rejecting %s update (nonce %s): %s", t->type_url,
               resp->nonce, err ? err : "rejected");
        rc = mp_ads_delta_request(s, t, resp->nonce, err ? err : "rejected");
        goto out;
    }
    for (size_t i = 0; i < removed.n; i++)
        mp_ads_held_remove(t, removed.v[i]);
    for (size_t i = 0; i < n_kept && !rc; i++)
        rc = mp_ads_held_put(t, kept[i].name, kept[i].version, &d.deps[kept_idx[i]]);
    if (!rc)
        rc = mp_ads_delta_request(s, t, resp->nonce, NULL);
    if (!rc)
        rc = mp_ads_update_child(s, t);
out:
    free(err);
    free(kept);
    free(kept_idx);
    mp_ads_names_clear(&removed);
    mp_ads_decoded_free(&d);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}
