/* SPDX-License-Identifier: MIT */
/*
 * test_fuzz_replay.c: replays every input of the committed fuzz corpus
 * (test/corpus, grown by `make fuzz`) through the fuzz target, so make check
 * re-runs what the fuzzer found interesting with the ordinary compiler.
 * A model mismatch aborts the runner with the target's message.
 */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern int fz_load_mode; /* fuzz_api.c */

TEST(fuzz_corpus_replay)
{
    const char *dir = getenv("XM_CORPUS");
    if (!dir)
        dir = "test/corpus";
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    size_t bytes = 0;
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (under_emulation() && seen++ % 10) /* TCG: every tenth input */
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        static uint8_t buf[1 << 16];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        for (fz_load_mode = 0; fz_load_mode < 2; fz_load_mode++)
            LLVMFuzzerTestOneInput(buf, len);
        fz_load_mode = 1;
        n++;
        bytes += len;
    }
    closedir(d);
    printf("    replayed %d corpus inputs (%zu bytes), each without and with xm_load\n", n, bytes);
    CHECK(n >= 10);
}
