/*
 * read_all.h: reads a whole file for a test (config corpus, TLS fixtures).
 * Header-only, as the test helpers that use it are.
 */
#ifndef MP_TEST_READ_ALL_H
#define MP_TEST_READ_ALL_H

#include <stdio.h>
#include <stdlib.h>

/* Reads a whole file into a malloc'd, NUL-terminated buffer (its length in
 * *len); NULL when it cannot be read. */
__attribute__((unused)) static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

#endif
