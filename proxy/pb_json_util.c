/* pb_json_util.c: the text forms of the proto3 JSON mapping's special types. */
#include "pb_json_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_common.h"

#define MAX_DURATION_SECONDS  315576000000LL
#define MIN_TIMESTAMP_SECONDS (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define MAX_TIMESTAMP_SECONDS 253402300799LL   /* 9999-12-31T23:59:59Z */

enum mp_pb_wkt mp_pb_wkt_of(const ProtobufCMessageDescriptor *desc)
{
    static const struct {
        const char *name;
        enum mp_pb_wkt wkt;
    } table[] = {
        {"Any", MP_PB_WKT_ANY},
        {"Duration", MP_PB_WKT_DURATION},
        {"Timestamp", MP_PB_WKT_TIMESTAMP},
        {"Struct", MP_PB_WKT_STRUCT},
        {"Value", MP_PB_WKT_VALUE},
        {"ListValue", MP_PB_WKT_LIST_VALUE},
        {"FieldMask", MP_PB_WKT_FIELD_MASK},
        {"DoubleValue", MP_PB_WKT_WRAPPER},
        {"FloatValue", MP_PB_WKT_WRAPPER},
        {"Int64Value", MP_PB_WKT_WRAPPER},
        {"UInt64Value", MP_PB_WKT_WRAPPER},
        {"Int32Value", MP_PB_WKT_WRAPPER},
        {"UInt32Value", MP_PB_WKT_WRAPPER},
        {"BoolValue", MP_PB_WKT_WRAPPER},
        {"StringValue", MP_PB_WKT_WRAPPER},
        {"BytesValue", MP_PB_WKT_WRAPPER},
    };
    if (desc == NULL || strcmp(desc->package_name, "google.protobuf") != 0)
        return MP_PB_WKT_NONE;
    for (size_t i = 0; i < MP_ARRAY_LEN(table); i++)
        if (strcmp(desc->short_name, table[i].name) == 0)
            return table[i].wkt;
    return MP_PB_WKT_NONE;
}

/* Compares key with the JSON name of field (protobuf's ToJsonName: drop each
 * '_' and upper-case the letter after it), without building the name. */
static bool json_name_equals(const char *field, const char *key)
{
    bool upper = false;
    for (; *field != '\0'; field++) {
        if (*field == '_') {
            upper = true;
            continue;
        }
        char c = upper ? (char)toupper((unsigned char)*field) : *field;
        upper = false;
        if (*key++ != c)
            return false;
    }
    return *key == '\0';
}

const ProtobufCFieldDescriptor *mp_pb_field_find(const ProtobufCMessageDescriptor *desc,
                                                 const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (f != NULL)
        return f;
    for (unsigned i = 0; i < desc->n_fields; i++)
        if (json_name_equals(desc->fields[i].name, key))
            return &desc->fields[i];
    return NULL;
}

size_t mp_pb_value_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return 4;
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    }
    return 0;
}

bool mp_pb_field_is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *m = f->descriptor;
    if (m->n_fields != 2 || m->fields[0].id != 1 || m->fields[1].id != 2 ||
        strcmp(m->fields[0].name, "key") != 0 || strcmp(m->fields[1].name, "value") != 0)
        return false;
    /* protoc names the entry <CamelCaseField>Entry, nested in the parent. */
    char want[256];
    size_t n = 0;
    bool upper = true;
    for (const char *s = f->name; *s != '\0' && n + 6 < sizeof(want); s++) {
        if (*s == '_') {
            upper = true;
            continue;
        }
        want[n++] = upper ? (char)toupper((unsigned char)*s) : *s;
        upper = false;
    }
    memcpy(want + n, "Entry", 6);
    size_t plen = strlen(parent->name);
    return strcmp(m->short_name, want) == 0 && strncmp(m->name, parent->name, plen) == 0 &&
           m->name[plen] == '.';
}

/* Reads an optional fraction at *p ('.' and 1..9 digits) into nanoseconds
 * (0 when absent) and advances *p past it. Returns 0 or MP_ERR_INVAL. */
static int opt_nanos(const char **p, int32_t *nanos)
{
    *nanos = 0;
    if (**p != '.')
        return 0;
    const char *s = *p + 1;
    int n = 0;
    int32_t v = 0;
    while (isdigit((unsigned char)s[n])) {
        if (n == 9)
            return MP_ERR_INVAL;
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0)
        return MP_ERR_INVAL;
    for (int i = n; i < 9; i++)
        v *= 10;
    *nanos = v;
    *p = s + n;
    return 0;
}

int mp_pb_duration_parse(const char *s, int64_t *seconds, int32_t *nanos)
{
    const char *p = s;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (!isdigit((unsigned char)*p))
        return MP_ERR_INVAL;
    int64_t sec = 0;
    while (isdigit((unsigned char)*p)) {
        sec = sec * 10 + (*p - '0');
        if (sec > MAX_DURATION_SECONDS)
            return MP_ERR_INVAL;
        p++;
    }
    int32_t ns;
    if (opt_nanos(&p, &ns) != 0)
        return MP_ERR_INVAL;
    if (p[0] != 's' || p[1] != '\0')
        return MP_ERR_INVAL;
    *seconds = neg ? -sec : sec;
    *nanos = neg ? -ns : ns;
    return 0;
}

static void format_fraction(int32_t ns, char *buf, size_t cap)
{
    if (ns == 0)
        buf[0] = '\0';
    else if (ns % 1000000 == 0)
        snprintf(buf, cap, ".%03d", ns / 1000000);
    else if (ns % 1000 == 0)
        snprintf(buf, cap, ".%06d", ns / 1000);
    else
        snprintf(buf, cap, ".%09d", ns);
}

int mp_pb_duration_format(int64_t seconds, int32_t nanos, char *buf, size_t cap)
{
    if (seconds > MAX_DURATION_SECONDS || seconds < -MAX_DURATION_SECONDS || nanos <= -1000000000 ||
        nanos >= 1000000000 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0))
        return MP_ERR_INVAL;
    bool neg = seconds < 0 || nanos < 0;
    char frac[16];
    format_fraction(neg ? -nanos : nanos, frac, sizeof(frac));
    snprintf(buf, cap, "%s%lld%ss", neg ? "-" : "", (long long)(neg ? -seconds : seconds), frac);
    return 0;
}

/* Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int mp_pb_timestamp_parse(const char *s, int64_t *seconds, int32_t *nanos)
{
    int y, mo, d, h, mi, sec;
    if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return MP_ERR_INVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 59)
        return MP_ERR_INVAL;
    const char *p = s + 19;
    int32_t ns;
    if (opt_nanos(&p, &ns) != 0)
        return MP_ERR_INVAL;
    int64_t offset = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return MP_ERR_INVAL;
        offset = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    } else {
        return MP_ERR_INVAL;
    }
    int64_t t =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    if (t < MIN_TIMESTAMP_SECONDS || t > MAX_TIMESTAMP_SECONDS)
        return MP_ERR_INVAL;
    *seconds = t;
    *nanos = ns;
    return 0;
}

int mp_pb_timestamp_format(int64_t seconds, int32_t nanos, char *buf, size_t cap)
{
    if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS || nanos < 0 ||
        nanos >= 1000000000)
        return MP_ERR_INVAL;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rem = seconds - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    char frac[16];
    format_fraction(nanos, frac, sizeof(frac));
    snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d%sZ", (long long)y, m, d, (int)(rem / 3600),
             (int)(rem % 3600 / 60), (int)(rem % 60), frac);
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int mp_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return MP_ERR_INVAL;
    *out = NULL;
    *out_len = 0;
    if (len == 0)
        return 0;
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (buf == NULL)
        return MP_ERR_NOMEM;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return MP_ERR_INVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = n;
    return 0;
}

size_t mp_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void mp_base64_encode(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}
