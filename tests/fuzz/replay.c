/* replay.c - runs a libFuzzer target's LLVMFuzzerTestOneInput over files,
 * without libFuzzer: linked with each tests/fuzz/fuzz_<target>.c into
 * replay_<target> (CMakeLists.txt), so the suite replays the committed
 * seeds and every finding's input (tests/fuzz/corpus/, tests/fuzz/regress/)
 * with gcc, in the Release and the sanitizer builds alike.
 *
 *   replay_<target> FILE-OR-DIR...
 *
 * Each file is one input. A target that finds a bug aborts or traps, so
 * the process dies and the caller (tests/test_fuzz_replay.sh) names the
 * input it was running; otherwise it prints one line per input and exits 0.
 * Exit 2 when a path cannot be read or nothing was given. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: cannot open\n", path);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        fclose(f);
        free(buf);
        return 2;
    }
    fclose(f);
    fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_path(const char *path, int *count) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: no such file or directory\n", path);
        return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
        ++*count;
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (!d) return 2;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) names = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        snprintf(names[n++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp); /* a stable order: the same run every time */
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc) rc = run_path(names[i], count);
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
        return 2;
    }
    int count = 0, rc = 0;
    for (int i = 1; i < argc && !rc; i++) rc = run_path(argv[i], &count);
    if (!rc) printf("replay: %d input(s), none crashed\n", count);
    return rc;
}
