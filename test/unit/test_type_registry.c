/* Unit tests for type_registry.c: type URLs map to the right descriptors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/type_registry.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"

static void finds_by_type_url(void **state)
{
    (void)state;
    assert_ptr_equal(mp_type_registry_find("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
                     &envoy__config__cluster__v3__cluster__descriptor);
    assert_ptr_equal(mp_type_registry_find("envoy.config.listener.v3.Listener"),
                     &envoy__config__listener__v3__listener__descriptor);
    assert_non_null(mp_type_registry_find(
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"));
    assert_non_null(mp_type_registry_find("type.googleapis.com/google.protobuf.Duration"));
}

static void unknown_types_are_null(void **state)
{
    (void)state;
    assert_null(mp_type_registry_find("type.googleapis.com/envoy.config.cluster.v3.Nope"));
    assert_null(mp_type_registry_find(""));
    assert_null(mp_type_registry_find(NULL));
    assert_true(mp_type_registry_size() > 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_by_type_url),
        cmocka_unit_test(unknown_types_are_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
