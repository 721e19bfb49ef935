/*
 * config_corpus.h: helpers for the config tests: find test/configs/ and read
 * files from it. Header-only so each test stays one file.
 */
#ifndef MP_TEST_CONFIG_CORPUS_H
#define MP_TEST_CONFIG_CORPUS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "read_all.h"

/* The corpus lives at <source root>/test/configs. Meson runs tests from the
 * build directory and compiles with relative paths, so try a few places:
 * $MESHPROXY_CONFIGS, then the path from __FILE__ relative to the working
 * directory and its parents. Returns a static path or NULL. */
__attribute__((unused)) static const char *corpus_dir(void)
{
    static char found[4096];
    const char *env = getenv("MESHPROXY_CONFIGS");
    struct stat st;
    if (env != NULL && stat(env, &st) == 0)
        return env;
    /* __FILE__ is "../test/unit/config_corpus.h" (relative to the build
     * directory) or absolute; the corpus is test/configs. */
    static const char *const tries[] = {"test/configs", "../test/configs", "../../test/configs",
                                        "../../../test/configs"};
    if (__FILE__[0] == '/') {
        snprintf(found, sizeof(found), "%s", __FILE__);
        char *slash = strrchr(found, '/');
        if (slash != NULL) {
            snprintf(slash, sizeof(found) - (size_t)(slash - found), "/../configs");
            if (stat(found, &st) == 0 && S_ISDIR(st.st_mode))
                return found;
        }
    }
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        snprintf(found, sizeof(found), "%s", tries[i]);
        if (stat(found, &st) == 0 && S_ISDIR(st.st_mode))
            return found;
    }
    return NULL;
}

/* Lists regular files of <corpus>/<sub> (sorted); returns the count. The
 * caller frees each name and the array. */
__attribute__((unused)) static size_t list_dir(const char *sub, char ***names)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/%s", corpus_dir(), sub);
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    size_t count = 0;
    *names = NULL;
    if (n < 0)
        return 0;
    *names = calloc((size_t)n, sizeof(char *));
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.' && strstr(ents[i]->d_name, ".expect") == NULL) {
            size_t len = strlen(dir) + strlen(ents[i]->d_name) + 2;
            (*names)[count] = malloc(len);
            snprintf((*names)[count], len, "%s/%s", dir, ents[i]->d_name);
            count++;
        }
        free(ents[i]);
    }
    free(ents);
    return count;
}

#endif
