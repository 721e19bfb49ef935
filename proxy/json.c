/*
 * json.c: strict RFC 8259 parser into an arena-allocated DOM.
 *
 * Strict on purpose: no comments, no trailing commas, no leading zeros, no
 * raw control characters, valid UTF-8 only, duplicate keys rejected. A
 * config that another parser would read differently must not pass here.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_common.h"

#define ARENA_CHUNK       (32 * 1024)
#define DEFAULT_MAX_BYTES (64u * 1024 * 1024)
#define DEFAULT_MAX_DEPTH 128
#define DEFAULT_MAX_NODES (4u * 1024 * 1024)

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct mp_json_doc {
    struct chunk *chunks;
    struct mp_json *root;
};

static struct mp_json null_root = {.type = MP_JSON_NULL};

struct mp_json_doc *mp_json_doc_new(void)
{
    return calloc(1, sizeof(struct mp_json_doc));
}

void mp_json_doc_free(struct mp_json_doc *doc)
{
    if (doc == NULL)
        return;
    struct chunk *c = doc->chunks;
    while (c != NULL) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(doc);
}

void *mp_json_doc_alloc(struct mp_json_doc *doc, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct chunk *c = doc->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        /* A big one-off block goes behind the current chunk so the
         * current chunk's free space is not abandoned. */
        if (n > ARENA_CHUNK && doc->chunks != NULL) {
            c->next = doc->chunks->next;
            doc->chunks->next = c;
        } else {
            c->next = doc->chunks;
            doc->chunks = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

void mp_json_doc_set_root(struct mp_json_doc *doc, struct mp_json *root)
{
    doc->root = root;
}

const struct mp_json *mp_json_doc_root(const struct mp_json_doc *doc)
{
    return doc->root != NULL ? doc->root : &null_root;
}

const char *mp_json_type_name(enum mp_json_type t)
{
    switch (t) {
    case MP_JSON_NULL: return "null";
    case MP_JSON_BOOL: return "bool";
    case MP_JSON_NUMBER: return "number";
    case MP_JSON_STRING: return "string";
    case MP_JSON_ARRAY: return "array";
    case MP_JSON_OBJECT: return "object";
    case MP_JSON_PLAIN: return "scalar";
    }
    return "?";
}

struct mp_json *mp_json_node_new(struct mp_json_doc *doc, enum mp_json_type t, const char *s,
                                 size_t len, uint32_t line)
{
    struct mp_json *n = mp_json_doc_alloc(doc, sizeof(*n));
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->type = t;
    n->line = line;
    n->height = 1;
    n->weight = 1;
    if (t == MP_JSON_NUMBER || t == MP_JSON_STRING || t == MP_JSON_PLAIN) {
        char *copy = mp_json_doc_alloc(doc, len + 1);
        if (copy == NULL)
            return NULL;
        if (len > 0)
            memcpy(copy, s, len);
        copy[len] = '\0';
        n->u.str.s = copy;
        n->u.str.len = len;
    }
    return n;
}

/* Grows an arena array by doubling; the old block is simply abandoned to
 * the arena, which costs at most as much again as the final array. */
static void *grow(struct mp_json_doc *doc, void *old, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return old;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = mp_json_doc_alloc(doc, ncap * elem);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, old, n * elem);
    *cap = ncap;
    return p;
}

/* Folds a new child into its parent's height and weight. */
static void account(struct mp_json *parent, const struct mp_json *child)
{
    if (child == NULL)
        return;
    if (child->height + 1 > parent->height)
        parent->height = child->height + 1;
    parent->weight =
        child->weight > UINT32_MAX - parent->weight ? UINT32_MAX : parent->weight + child->weight;
}

int mp_json_array_append(struct mp_json_doc *doc, struct mp_json *arr, struct mp_json *item)
{
    struct mp_json **items =
        grow(doc, arr->u.arr.items, arr->u.arr.n, &arr->u.arr.cap, sizeof(*items));
    if (items == NULL)
        return MP_ERR_NOMEM;
    arr->u.arr.items = items;
    items[arr->u.arr.n++] = item;
    account(arr, item);
    return 0;
}

int mp_json_object_append(struct mp_json_doc *doc, struct mp_json *obj, const char *key,
                          size_t key_len, struct mp_json *value, uint32_t line)
{
    struct mp_json_member *m =
        grow(doc, obj->u.obj.members, obj->u.obj.n, &obj->u.obj.cap, sizeof(*m));
    if (m == NULL)
        return MP_ERR_NOMEM;
    obj->u.obj.members = m;
    char *k = mp_json_doc_alloc(doc, key_len + 1);
    if (k == NULL)
        return MP_ERR_NOMEM;
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    m[obj->u.obj.n].key = k;
    m[obj->u.obj.n].key_len = key_len;
    m[obj->u.obj.n].value = value;
    m[obj->u.obj.n].line = line;
    obj->u.obj.n++;
    account(obj, value);
    return 0;
}

static int keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

int mp_json_object_close(struct mp_json_doc *doc, struct mp_json *obj, const char **dup_key)
{
    size_t n = obj->u.obj.n;
    if (n == 0)
        return 0;
    uint32_t *idx = mp_json_doc_alloc(doc, n * sizeof(*idx));
    if (idx == NULL)
        return MP_ERR_NOMEM;
    const struct mp_json_member *m = obj->u.obj.members;
    /* Insertion sort for small objects, merge sort otherwise; stable, so the
     * first duplicate reported is the later one in the document. */
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t v = idx[i];
            size_t j = i;
            while (j > 0 &&
                   keycmp(m[idx[j - 1]].key, m[idx[j - 1]].key_len, m[v].key, m[v].key_len) > 0) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
    } else {
        uint32_t *tmp = mp_json_doc_alloc(doc, n * sizeof(*tmp));
        if (tmp == NULL)
            return MP_ERR_NOMEM;
        for (size_t width = 1; width < n; width *= 2) {
            for (size_t lo = 0; lo < n; lo += 2 * width) {
                size_t mid = MP_MIN(lo + width, n), hi = MP_MIN(lo + 2 * width, n);
                size_t a = lo, b = mid, k = lo;
                while (a < mid && b < hi) {
                    if (keycmp(m[idx[a]].key, m[idx[a]].key_len, m[idx[b]].key,
                               m[idx[b]].key_len) <= 0)
                        tmp[k++] = idx[a++];
                    else
                        tmp[k++] = idx[b++];
                }
                while (a < mid)
                    tmp[k++] = idx[a++];
                while (b < hi)
                    tmp[k++] = idx[b++];
            }
            memcpy(idx, tmp, n * sizeof(*idx));
        }
    }
    for (size_t i = 1; i < n; i++) {
        if (keycmp(m[idx[i - 1]].key, m[idx[i - 1]].key_len, m[idx[i]].key, m[idx[i]].key_len) ==
            0) {
            if (dup_key != NULL)
                *dup_key = m[idx[i]].key;
            return MP_ERR_PARSE;
        }
    }
    obj->u.obj.sorted = idx;
    return 0;
}

const struct mp_json *mp_json_object_get(const struct mp_json *obj, const char *key)
{
    if (obj == NULL || obj->type != MP_JSON_OBJECT)
        return NULL;
    size_t klen = strlen(key);
    const struct mp_json_member *m = obj->u.obj.members;
    if (obj->u.obj.sorted == NULL) {
        for (size_t i = 0; i < obj->u.obj.n; i++)
            if (keycmp(m[i].key, m[i].key_len, key, klen) == 0)
                return m[i].value;
        return NULL;
    }
    size_t lo = 0, hi = obj->u.obj.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct mp_json_member *x = &m[obj->u.obj.sorted[mid]];
        int c = keycmp(key, klen, x->key, x->key_len);
        if (c == 0)
            return x->value;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- the parser ---------------------------------------------------------- */

struct parser {
    const char *p, *start, *end;
    uint32_t line;
    unsigned depth, max_depth;
    size_t nodes, max_nodes;
    struct mp_json_doc *doc;
    char **err;
    int rc;
    /* scratch buffer for decoding strings */
    char *buf;
    size_t buf_cap;
};

static int fail(struct parser *ps, int rc, const char *fmt, const char *arg)
{
    if (ps->rc != 0)
        return ps->rc;
    const char *line_start = ps->p;
    while (line_start > ps->start && line_start[-1] != '\n')
        line_start--;
    char msg[160];
    snprintf(msg, sizeof(msg), fmt, arg);
    mp_set_err(ps->err, "line %u column %zu: %s", ps->line, (size_t)(ps->p - line_start) + 1, msg);
    ps->rc = rc;
    return rc;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == '\n')
            ps->line++;
        else if (c != ' ' && c != '\t' && c != '\r')
            return;
        ps->p++;
    }
}

static struct mp_json *new_node(struct parser *ps, enum mp_json_type t, const char *s, size_t len)
{
    if (++ps->nodes > ps->max_nodes) {
        fail(ps, MP_ERR_LIMIT, "%s", "document has too many nodes");
        return NULL;
    }
    struct mp_json *n = mp_json_node_new(ps->doc, t, s, len, ps->line);
    if (n == NULL)
        fail(ps, MP_ERR_NOMEM, "%s", "out of memory");
    return n;
}

static int buf_put(struct parser *ps, size_t *len, const char *s, size_t n)
{
    if (*len + n > ps->buf_cap) {
        size_t cap = ps->buf_cap ? ps->buf_cap : 256;
        while (cap < *len + n)
            cap *= 2;
        char *b = realloc(ps->buf, cap);
        if (b == NULL)
            return fail(ps, MP_ERR_NOMEM, "%s", "out of memory");
        ps->buf = b;
        ps->buf_cap = cap;
    }
    memcpy(ps->buf + *len, s, n);
    *len += n;
    return 0;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = mp_hex_value(s[i]);
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

static size_t utf8_encode(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, max U+10FFFF), or 0 when invalid. */
static size_t utf8_valid(const unsigned char *s, const unsigned char *end)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Decodes the string at ps->p (which is at the opening quote) into ps->buf. */
static int parse_string_raw(struct parser *ps, size_t *out_len)
{
    size_t len = 0;
    ps->p++;
    for (;;) {
        const char *run = ps->p;
        while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' &&
               (unsigned char)*ps->p >= 0x20 && (unsigned char)*ps->p < 0x80)
            ps->p++;
        if (ps->p > run && buf_put(ps, &len, run, (size_t)(ps->p - run)) != 0)
            return ps->rc;
        if (ps->p >= ps->end)
            return fail(ps, MP_ERR_PARSE, "%s", "unterminated string");
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            *out_len = len;
            return 0;
        }
        if (c < 0x20)
            return fail(ps, MP_ERR_PARSE, "%s", "control character in string");
        if (c >= 0x80) {
            size_t n = utf8_valid((const unsigned char *)ps->p, (const unsigned char *)ps->end);
            if (n == 0)
                return fail(ps, MP_ERR_PARSE, "%s", "invalid UTF-8 in string");
            if (buf_put(ps, &len, ps->p, n) != 0)
                return ps->rc;
            ps->p += n;
            continue;
        }
        /* backslash escape */
        if (ps->end - ps->p < 2)
            return fail(ps, MP_ERR_PARSE, "%s", "unterminated string");
        char e = ps->p[1], ch;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (ps->end - ps->p < 6 || hex4(ps->p + 2, &cp) != 0)
                return fail(ps, MP_ERR_PARSE, "%s", "bad \\u escape");
            ps->p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
                    hex4(ps->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(ps, MP_ERR_PARSE, "%s", "unpaired UTF-16 surrogate");
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(ps, MP_ERR_PARSE, "%s", "unpaired UTF-16 surrogate");
            }
            char u[4];
            if (buf_put(ps, &len, u, utf8_encode(cp, u)) != 0)
                return ps->rc;
            continue;
        }
        default: return fail(ps, MP_ERR_PARSE, "%s", "bad escape in string");
        }
        if (buf_put(ps, &len, &ch, 1) != 0)
            return ps->rc;
        ps->p += 2;
    }
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static struct mp_json *parse_number(struct parser *ps)
{
    const char *s = ps->p, *p = ps->p, *e = ps->end;
    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0') {
        p++;
    } else if (p < e && *p >= '1' && *p <= '9') {
        while (p < e && is_digit(*p))
            p++;
    } else {
        fail(ps, MP_ERR_PARSE, "%s", "invalid number");
        return NULL;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || !is_digit(*p)) {
            ps->p = p;
            fail(ps, MP_ERR_PARSE, "%s", "invalid number: digit expected after '.'");
            return NULL;
        }
        while (p < e && is_digit(*p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || !is_digit(*p)) {
            ps->p = p;
            fail(ps, MP_ERR_PARSE, "%s", "invalid number: digit expected in exponent");
            return NULL;
        }
        while (p < e && is_digit(*p))
            p++;
    }
    if (p < e && (is_digit(*p) || *p == '.')) {
        ps->p = p;
        fail(ps, MP_ERR_PARSE, "%s", "invalid number (leading zero?)");
        return NULL;
    }
    ps->p = p;
    return new_node(ps, MP_JSON_NUMBER, s, (size_t)(p - s));
}

static struct mp_json *parse_value(struct parser *ps);

static struct mp_json *parse_array(struct parser *ps)
{
    struct mp_json *arr = new_node(ps, MP_JSON_ARRAY, NULL, 0);
    if (arr == NULL)
        return NULL;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return arr;
    }
    for (;;) {
        struct mp_json *item = parse_value(ps);
        if (item == NULL)
            return NULL;
        if (mp_json_array_append(ps->doc, arr, item) != 0) {
            fail(ps, MP_ERR_NOMEM, "%s", "out of memory");
            return NULL;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return arr;
        }
        fail(ps, MP_ERR_PARSE, "%s", "expected ',' or ']'");
        return NULL;
    }
}

static struct mp_json *parse_object(struct parser *ps)
{
    struct mp_json *obj = new_node(ps, MP_JSON_OBJECT, NULL, 0);
    if (obj == NULL)
        return NULL;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return obj;
    }
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            fail(ps, MP_ERR_PARSE, "%s", "expected a string key");
            return NULL;
        }
        const char *key_pos = ps->p;
        uint32_t key_line = ps->line;
        size_t klen;
        if (parse_string_raw(ps, &klen) != 0)
            return NULL;
        if (mp_json_object_append(ps->doc, obj, ps->buf ? ps->buf : "", klen, NULL, key_line) !=
            0) {
            fail(ps, MP_ERR_NOMEM, "%s", "out of memory");
            return NULL;
        }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            fail(ps, MP_ERR_PARSE, "%s", "expected ':' after key");
            return NULL;
        }
        ps->p++;
        struct mp_json *v = parse_value(ps);
        if (v == NULL)
            return NULL;
        obj->u.obj.members[obj->u.obj.n - 1].value = v;
        account(obj, v);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            const char *dup = NULL;
            int rc = mp_json_object_close(ps->doc, obj, &dup);
            if (rc == MP_ERR_PARSE) {
                /* Point at the first key of the object for the position;
                 * the message names the key. */
                ps->p = key_pos;
                ps->line = key_line;
                fail(ps, MP_ERR_PARSE, "duplicate key \"%s\"", dup);
                return NULL;
            }
            if (rc != 0) {
                fail(ps, MP_ERR_NOMEM, "%s", "out of memory");
                return NULL;
            }
            ps->p++;
            return obj;
        }
        fail(ps, MP_ERR_PARSE, "%s", "expected ',' or '}'");
        return NULL;
    }
}

static int literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return 0;
    ps->p += n;
    return 1;
}

static struct mp_json *parse_value(struct parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, MP_ERR_PARSE, "%s", "unexpected end of input");
        return NULL;
    }
    char c = *ps->p;
    struct mp_json *n;
    switch (c) {
    case '{':
    case '[':
        if (++ps->depth > ps->max_depth) {
            fail(ps, MP_ERR_LIMIT, "%s", "nesting too deep");
            return NULL;
        }
        n = c == '{' ? parse_object(ps) : parse_array(ps);
        ps->depth--;
        return n;
    case '"': {
        size_t len;
        if (parse_string_raw(ps, &len) != 0)
            return NULL;
        return new_node(ps, MP_JSON_STRING, ps->buf ? ps->buf : "", len);
    }
    case 't':
    case 'f':
        if (literal(ps, "true") || literal(ps, "false")) {
            n = new_node(ps, MP_JSON_BOOL, NULL, 0);
            if (n != NULL)
                n->u.boolean = c == 't';
            return n;
        }
        break;
    case 'n':
        if (literal(ps, "null"))
            return new_node(ps, MP_JSON_NULL, NULL, 0);
        break;
    default:
        if (c == '-' || is_digit(c))
            return parse_number(ps);
        break;
    }
    fail(ps, MP_ERR_PARSE, "unexpected character '%s'",
         (char[]){(unsigned char)c >= 0x20 && (unsigned char)c < 0x7f ? c : '?', '\0'});
    return NULL;
}

int mp_json_parse(const char *text, size_t len, const struct mp_json_limits *lim,
                  struct mp_json_doc **out, char **err)
{
    struct parser ps = {
        .p = text,
        .start = text,
        .end = text + len,
        .line = 1,
        .max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH,
        .max_nodes = lim && lim->max_nodes ? lim->max_nodes : DEFAULT_MAX_NODES,
        .err = err,
    };
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : DEFAULT_MAX_BYTES;
    if (len > max_bytes) {
        mp_set_err(err, "document is %zu bytes, more than the limit of %zu", len, max_bytes);
        return MP_ERR_LIMIT;
    }
    /* A UTF-8 byte order mark is tolerated, as most JSON readers do. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ps.p += 3;
    ps.doc = mp_json_doc_new();
    if (ps.doc == NULL)
        return MP_ERR_NOMEM;
    struct mp_json *root = parse_value(&ps);
    if (root != NULL) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            fail(&ps, MP_ERR_PARSE, "%s", "trailing characters after the document");
    }
    free(ps.buf);
    if (ps.rc != 0) {
        mp_json_doc_free(ps.doc);
        return ps.rc;
    }
    ps.doc->root = root;
    *out = ps.doc;
    return 0;
}
