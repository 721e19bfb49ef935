/* Unit tests for filters/filter_lookup.c: the typed_config type decides, the
 * name is the fallback, type URLs lose their prefix, and both registries
 * (HTTP and network) answer by it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "filters/filter_lookup.h"
#include "proxy/http_filter.h"
#include "proxy/network_filter.h"

struct ops {
    int other;
    const char *config_type;
    const char *name;
};

static const struct ops a = {1, "pkg.A", "filter.a"};
static const struct ops b = {2, "pkg.B", "filter.b"};
static const struct ops c = {3, NULL, "filter.c"}; /* no typed config */
static const struct ops *const reg[] = {&a, &b, &c};

static ptrdiff_t find(const char *name, const char *type_url)
{
    return mp_filter_lookup((const void *const *)reg, 3, offsetof(struct ops, name),
                            offsetof(struct ops, config_type), name, type_url);
}

static void test_type_decides(void **state)
{
    (void)state;
    assert_int_equal(find("filter.a", "type.googleapis.com/pkg.B"), 1);
    assert_int_equal(find(NULL, "pkg.A"), 0);
    assert_int_equal(find("nothing", "example.com/x/pkg.B"), 1);
}

static void test_name_fallback(void **state)
{
    (void)state;
    assert_int_equal(find("filter.c", "type.googleapis.com/pkg.Unknown"), 2);
    assert_int_equal(find("filter.b", ""), 1);
    assert_int_equal(find("filter.a", NULL), 0);
}

static void test_not_found(void **state)
{
    (void)state;
    assert_int_equal(find("filter.x", "type.googleapis.com/pkg.X"), -1);
    assert_int_equal(find(NULL, NULL), -1);
    assert_int_equal(find(NULL, ""), -1);
}

static void test_registries(void **state)
{
    (void)state;
    const struct mp_http_filter_ops *h = mp_http_filter_find(
        "x", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
    assert_non_null(h);
    assert_string_equal(h->name, "envoy.filters.http.router");
    h = mp_http_filter_find("envoy.filters.http.rbac", NULL);
    assert_non_null(h);
    assert_string_equal(h->name, "envoy.filters.http.rbac");
    assert_null(mp_http_filter_find("nope", "type.googleapis.com/nope.Nope"));
    const struct mp_network_filter_ops *n = mp_network_filter_find(
        NULL, "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC");
    assert_non_null(n);
    assert_string_equal(n->name, "envoy.filters.network.rbac");
    assert_null(mp_network_filter_find("nope", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_decides),
        cmocka_unit_test(test_name_fallback),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_registries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
