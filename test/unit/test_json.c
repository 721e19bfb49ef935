/* Unit tests for json.c: the strict parser, its limits, and the DOM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/json.h"
#include "proxy/mp_common.h"

static struct mp_json_doc *parse_ok(const char *text)
{
    struct mp_json_doc *doc = NULL;
    char *err = NULL;
    int rc = mp_json_parse(text, strlen(text), NULL, &doc, &err);
    if (rc != 0)
        fail_msg("parse of %s failed: %s", text, err);
    return doc;
}

/* Returns the error message (caller frees) and checks the code. */
static char *parse_err(const char *text, size_t len, const struct mp_json_limits *lim, int want)
{
    struct mp_json_doc *doc = NULL;
    char *err = NULL;
    int rc = mp_json_parse(text, len, lim, &doc, &err);
    assert_int_equal(rc, want);
    assert_null(doc);
    assert_non_null(err);
    return err;
}

static void parses_nested_document(void **state)
{
    (void)state;
    struct mp_json_doc *doc = parse_ok(
        " {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {\"c\": {}}, \"d\": []}\n");
    const struct mp_json *root = mp_json_doc_root(doc);
    assert_int_equal(root->type, MP_JSON_OBJECT);
    assert_int_equal(root->u.obj.n, 3);
    const struct mp_json *a = mp_json_object_get(root, "a");
    assert_non_null(a);
    assert_int_equal(a->type, MP_JSON_ARRAY);
    assert_int_equal(a->u.arr.n, 6);
    assert_int_equal(a->u.arr.items[0]->type, MP_JSON_NUMBER);
    assert_string_equal(a->u.arr.items[1]->u.str.s, "-2.5e3"); /* text kept exactly */
    assert_true(a->u.arr.items[2]->u.boolean);
    assert_false(a->u.arr.items[3]->u.boolean);
    assert_int_equal(a->u.arr.items[4]->type, MP_JSON_NULL);
    assert_string_equal(a->u.arr.items[5]->u.str.s, "x");
    const struct mp_json *c = mp_json_object_get(mp_json_object_get(root, "b"), "c");
    assert_non_null(c);
    assert_int_equal(c->u.obj.n, 0);
    assert_null(mp_json_object_get(root, "zz"));
    assert_null(mp_json_object_get(a, "a")); /* not an object */
    assert_int_equal(root->height, 3);
    mp_json_doc_free(doc);
}

static void decodes_escapes_and_utf8(void **state)
{
    (void)state;
    struct mp_json_doc *doc = parse_ok("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u4e2d\", "
                                       "\"\\ud83d\\ude00\", \"\xc3\xa9\", \"\\u0000x\"]");
    const struct mp_json *r = mp_json_doc_root(doc);
    assert_string_equal(r->u.arr.items[0]->u.str.s, "a\"b\\c/d\b\f\n\r\t");
    assert_string_equal(r->u.arr.items[1]->u.str.s, "\xc3\xa9\xe4\xb8\xad");
    assert_string_equal(r->u.arr.items[2]->u.str.s, "\xf0\x9f\x98\x80");
    assert_string_equal(r->u.arr.items[3]->u.str.s, "\xc3\xa9");
    /* An escaped NUL is kept; len tells. */
    assert_int_equal(r->u.arr.items[4]->u.str.len, 2);
    assert_int_equal(r->u.arr.items[4]->u.str.s[1], 'x');
    mp_json_doc_free(doc);
}

static void rejects_what_rfc8259_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                   /* nothing */
        "[1,]",               /* trailing comma */
        "{\"a\":1,}",         /* trailing comma */
        "[01]",               /* leading zero */
        "[1.]",               /* digit after dot */
        "[.5]",               /* leading dot */
        "[1e]",               /* exponent digits */
        "[+1]",               /* plus sign */
        "// c\n{}",           /* comments */
        "{'a':1}",            /* single quotes */
        "{a:1}",              /* bare key */
        "[\"a\tb\"]",         /* raw control char */
        "[\"\\x\"]",          /* bad escape */
        "[\"\\ud800\"]",      /* lone high surrogate */
        "[\"\\udc00\"]",      /* lone low surrogate */
        "[\"\xc3\"]",         /* truncated UTF-8 */
        "[\"\xc0\xaf\"]",     /* overlong */
        "[\"\xed\xa0\x80\"]", /* encoded surrogate */
        "[true false]",       /* missing comma */
        "{} {}",              /* two documents */
        "[nul]",              /* bad literal */
        "[\"abc",             /* unterminated */
        "{\"a\" 1}",          /* missing colon */
        "NaN",                /* not JSON */
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(bad); i++) {
        struct mp_json_doc *doc = NULL;
        char *err = NULL;
        int rc = mp_json_parse(bad[i], strlen(bad[i]), NULL, &doc, &err);
        if (rc != MP_ERR_PARSE)
            fail_msg("\"%s\" gave %d, want parse error", bad[i], rc);
        assert_null(doc);
        assert_non_null(err);
        assert_non_null(strstr(err, "line 1 column"));
        free(err);
    }
}

static void duplicate_keys_are_errors(void **state)
{
    (void)state;
    const char *text = "{\"a\": 1,\n \"b\": 2,\n \"a\": 3}";
    char *err = parse_err(text, strlen(text), NULL, MP_ERR_PARSE);
    assert_non_null(strstr(err, "duplicate key \"a\""));
    free(err);
    /* Big objects go through the merge-sort path. */
    char big[4096];
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof(big) - n, "{");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "\"k%d\":%d,", i, i);
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\"k17\":0}");
    err = parse_err(big, n, NULL, MP_ERR_PARSE);
    assert_non_null(strstr(err, "duplicate key \"k17\""));
    free(err);
}

static void big_objects_are_searchable(void **state)
{
    (void)state;
    char big[8192];
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof(big) - n, "{");
    for (int i = 99; i >= 0; i--)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"key%d\":%d", i == 99 ? "" : ",", i, i);
    snprintf(big + n, sizeof(big) - n, "}");
    struct mp_json_doc *doc = parse_ok(big);
    const struct mp_json *root = mp_json_doc_root(doc);
    for (int i = 0; i < 100; i++) {
        char key[16], val[16];
        snprintf(key, sizeof(key), "key%d", i);
        snprintf(val, sizeof(val), "%d", i);
        const struct mp_json *v = mp_json_object_get(root, key);
        assert_non_null(v);
        assert_string_equal(v->u.str.s, val);
    }
    /* Members stay in document order. */
    assert_string_equal(root->u.obj.members[0].key, "key99");
    assert_null(mp_json_object_get(root, "key100"));
    mp_json_doc_free(doc);
}

static void limits_hold(void **state)
{
    (void)state;
    char deep[600];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    char *err = parse_err(deep, 600, NULL, MP_ERR_LIMIT);
    assert_non_null(strstr(err, "nesting too deep"));
    free(err);

    struct mp_json_limits lim = {.max_depth = 3};
    struct mp_json_doc *doc = NULL;
    assert_int_equal(mp_json_parse("[[[1]]]", 7, &lim, &doc, NULL), 0);
    mp_json_doc_free(doc);
    err = parse_err("[[[[1]]]]", 9, &lim, MP_ERR_LIMIT);
    free(err);

    struct mp_json_limits small = {.max_bytes = 4};
    err = parse_err("[1,2]", 5, &small, MP_ERR_LIMIT);
    free(err);

    struct mp_json_limits few = {.max_nodes = 3};
    err = parse_err("[1,2,3]", 7, &few, MP_ERR_LIMIT);
    free(err);
}

static void errors_carry_line_and_column(void **state)
{
    (void)state;
    const char *text = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    char *err = parse_err(text, strlen(text), NULL, MP_ERR_PARSE);
    assert_non_null(strstr(err, "line 3 column 8"));
    free(err);
}

static void nodes_know_their_lines(void **state)
{
    (void)state;
    struct mp_json_doc *doc = parse_ok("{\n\"a\":\n[\n1,\n\"x\"]}");
    const struct mp_json *a = mp_json_object_get(mp_json_doc_root(doc), "a");
    assert_int_equal(a->line, 3);
    assert_int_equal(a->u.arr.items[1]->line, 5);
    assert_int_equal(mp_json_doc_root(doc)->u.obj.members[0].line, 2);
    mp_json_doc_free(doc);
}

static void builder_interface(void **state)
{
    (void)state;
    struct mp_json_doc *doc = mp_json_doc_new();
    assert_non_null(doc);
    struct mp_json *obj = mp_json_node_new(doc, MP_JSON_OBJECT, NULL, 0, 1);
    struct mp_json *v = mp_json_node_new(doc, MP_JSON_PLAIN, "yes", 3, 2);
    assert_int_equal(mp_json_object_append(doc, obj, "k", 1, v, 2), 0);
    assert_int_equal(mp_json_object_append(doc, obj, "k", 1, v, 3), 0);
    const char *dup = NULL;
    assert_int_equal(mp_json_object_close(doc, obj, &dup), MP_ERR_PARSE);
    assert_string_equal(dup, "k");
    mp_json_doc_set_root(doc, obj);
    assert_int_equal(obj->weight, 3);
    /* A big allocation next to small ones. */
    void *p = mp_json_doc_alloc(doc, 100000);
    assert_non_null(p);
    memset(p, 1, 100000);
    mp_json_doc_free(doc);
    mp_json_doc_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_nested_document),
        cmocka_unit_test(decodes_escapes_and_utf8),
        cmocka_unit_test(rejects_what_rfc8259_rejects),
        cmocka_unit_test(duplicate_keys_are_errors),
        cmocka_unit_test(big_objects_are_searchable),
        cmocka_unit_test(limits_hold),
        cmocka_unit_test(errors_carry_line_and_column),
        cmocka_unit_test(nodes_know_their_lines),
        cmocka_unit_test(builder_interface),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
