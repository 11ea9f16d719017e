/* Crash-safe checkpoints: a process killed with SIGKILL at a random moment
 * while it writes checkpoints leaves one that loads and is exactly the
 * previous or the new state, never a mix; a write that runs out of room
 * (RLIMIT_FSIZE, as on a full disk) returns DCRW_EIO, keeps the old file
 * byte for byte and leaves no temporary file behind.
 *
 * DCRW_KILL_TRIALS sets the number of kill trials of each kind (default
 * 200 and 100; doc/RELIABILITY.md has the figures of a longer run). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "testutil.h"

static dcrw_config small(void) {
    dcrw_config c;
    ck_assert_int_eq(dcrw_config_preset(&c, DCRW_PRESET_DRAW), DCRW_OK);
    /* about 1 MB of parameters: large enough that a write takes a while
     * and a kill often lands in the middle of one */
    c.glimpses = 4;
    c.enc_size = 64;
    c.dec_size = 128;
    c.z_size = 16;
    return c;
}

static dcrw_config tiny(void) {
    dcrw_config c = small();
    c.height = c.width = 8;
    c.enc_size = 6;
    c.dec_size = 7;
    c.z_size = 3;
    c.glimpses = 3;
    return c;
}

static int trials(int dflt) {
    const char *s = getenv("DCRW_KILL_TRIALS");
    int n = s ? atoi(s) : 0;
    return n > 0 ? n : dflt;
}

/* Remove the temporary files a killed writer may leave (it cannot clean
 * up after SIGKILL); returns how many there were. Anything else but the
 * checkpoint is a failure. The temporary files are named ".dcrw-XXXXXX",
 * whatever the checkpoint's name. */
static int clean_tmp(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, base))
            continue;
        ck_assert_msg(!strncmp(e->d_name, ".dcrw-", 6) && strlen(e->d_name) == 12,
                      "unexpected file %s", e->d_name);
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
        n++;
    }
    closedir(d);
    return n;
}

static void kill_child(pid_t pid) {
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "the writer exited by itself (status %d) before it was killed", st);
}

/* In a writer child: drop every inherited descriptor (Check's message
 * file among them), so that nothing the child does can reach the test
 * runner's files. */
static void close_inherited(void) {
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 4096 ? max : 4096); fd++) close(fd);
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Two models A and B; the child saves A, B, A, B, ... to one path until
 * it is killed. */
START_TEST(test_kill_during_model_save) {
    dcrw_set_threads(1);
    dcrw_config c = small();
    dcrw_model *a, *b;
    ck_assert_int_eq(dcrw_model_create(&a, &c, 1), DCRW_OK);
    ck_assert_int_eq(dcrw_model_create(&b, &c, 2), DCRW_OK);
    size_t n;
    const float *pa = dcrw_model_params(a, &n), *pb = dcrw_model_params(b, NULL);
    ck_assert_msg(memcmp(pa, pb, n * sizeof *pa) != 0, "the two states must differ");
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    ck_assert_int_eq(dcrw_model_save(a, path), DCRW_OK);

    /* calibrate: how long one save takes, to spread the kills over a few */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < 4; k++) ck_assert_int_eq(dcrw_model_save(k % 2 ? a : b, path), DCRW_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long per_save = ((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000) / 4 + 1;

    const int ntrials = trials(200);
    unsigned short seed[3] = {0x1234, 0x5678, 0x9abc};
    int saw_a = 0, saw_b = 0, leftovers = 0;
    for (int trial = 0; trial < ntrials; trial++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close_inherited();
            for (long k = 0;; k++)
                if (dcrw_model_save(k % 2 ? a : b, path) != DCRW_OK) _exit(3);
        }
        sleep_us((long)(erand48(seed) * 3.0 * (double)per_save));
        kill_child(pid);
        dcrw_model *m = NULL;
        int rc = dcrw_model_load(&m, path);
        ck_assert_msg(rc == DCRW_OK, "trial %d: the checkpoint does not load: %s", trial,
                      dcrw_last_error());
        const float *pm = dcrw_model_params(m, NULL);
        int is_a = memcmp(pm, pa, n * sizeof *pm) == 0, is_b = memcmp(pm, pb, n * sizeof *pm) == 0;
        ck_assert_msg(is_a || is_b, "trial %d: the checkpoint is neither state", trial);
        saw_a += is_a;
        saw_b += is_b;
        dcrw_model_destroy(m);
        leftovers += clean_tmp(dir, "ckpt.safetensors");
    }
    printf("crashsafe: %d kills during model saves (%ld us per save): %d times A, %d times B, "
           "%d temporary files left by killed writers\n",
           ntrials, per_save, saw_a, saw_b, leftovers);
    /* the kills must have landed on both sides, or the test proved little */
    if (ntrials >= 50) ck_assert(saw_a > 0 && saw_b > 0);
    dcrw_model_destroy(a);
    dcrw_model_destroy(b);
    tu_rmdir(dir);
}
END_TEST

/* A training run that saves its trainer after every step, killed at
 * random: the checkpoint must resume, and equal bit for bit the state of
 * the step it records, which the parent computes by the same run. */
#define STEPS 60
#define TB 4

START_TEST(test_kill_during_training) {
    dcrw_set_threads(1);
    dcrw_config c = tiny();
    dcrw_model *m0;
    ck_assert_int_eq(dcrw_model_create(&m0, &c, 7), DCRW_OK);
    size_t n, P = dcrw_model_input_size(m0);
    dcrw_model_params(m0, &n);
    float *x = malloc(TB * P * sizeof *x);
    tu_fill_uniform(x, TB * P, 0.0f, 1.0f, 3);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 1;
    tc.learning_rate = 1e-2f;

    /* the reference states, params after 0..STEPS steps */
    float *states = malloc((STEPS + 1) * n * sizeof *states);
    {
        dcrw_model *m;
        ck_assert_int_eq(dcrw_model_create(&m, &c, 7), DCRW_OK);
        dcrw_trainer *t;
        ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
        memcpy(states, dcrw_model_params(m, NULL), n * sizeof *states);
        for (int s = 1; s <= STEPS; s++) {
            ck_assert_int_eq(dcrw_trainer_step(t, TB, x, NULL, NULL), DCRW_OK);
            memcpy(states + s * n, dcrw_model_params(m, NULL), n * sizeof *states);
        }
        dcrw_trainer_destroy(t);
        dcrw_model_destroy(m);
    }
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/train.safetensors", dir);

    /* calibrate one step + save */
    long per_step;
    {
        dcrw_model *m;
        ck_assert_int_eq(dcrw_model_create(&m, &c, 7), DCRW_OK);
        dcrw_trainer *t;
        ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int s = 0; s < 5; s++) {
            ck_assert_int_eq(dcrw_trainer_step(t, TB, x, NULL, NULL), DCRW_OK);
            ck_assert_int_eq(dcrw_trainer_save(t, path), DCRW_OK);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        per_step = ((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000) / 5 + 1;
        dcrw_trainer_destroy(t);
        dcrw_model_destroy(m);
    }

    const int ntrials = trials(100);
    unsigned short seed[3] = {7, 8, 9};
    int steps_seen_max = 0, leftovers = 0;
    for (int trial = 0; trial < ntrials; trial++) {
        unlink(path);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close_inherited();
            dcrw_model *m;
            dcrw_trainer *t;
            if (dcrw_model_create(&m, &c, 7) || dcrw_trainer_create(&t, m, &tc)) _exit(3);
            if (dcrw_trainer_save(t, path)) _exit(4);
            for (int s = 1; s <= STEPS; s++)
                if (dcrw_trainer_step(t, TB, x, NULL, NULL) || dcrw_trainer_save(t, path)) _exit(5);
            pause(); /* ran out of steps: wait for the kill */
            _exit(6);
        }
        /* up to about 12 steps in: every kill lands while the run is still
         * going, and often inside a save (a step is mostly its save) */
        sleep_us((long)(erand48(seed) * 12 * (double)per_step));
        kill_child(pid);
        if (access(path, F_OK) != 0) {
            /* killed before its first save completed: nothing to check */
            leftovers += clean_tmp(dir, "train.safetensors");
            continue;
        }
        dcrw_model *m;
        ck_assert_int_eq(dcrw_model_create(&m, &c, 99), DCRW_OK);
        dcrw_trainer *t;
        ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
        int rc = dcrw_trainer_resume(t, path);
        ck_assert_msg(rc == DCRW_OK, "trial %d: the checkpoint does not resume: %s", trial,
                      dcrw_last_error());
        uint64_t s = dcrw_trainer_step_count(t);
        ck_assert_uint_le(s, STEPS);
        ck_assert_msg(memcmp(dcrw_model_params(m, NULL), states + s * n, n * sizeof(float)) == 0,
                      "trial %d: the parameters are not those of step %d", trial, (int)s);
        if ((int)s > steps_seen_max) steps_seen_max = (int)s;
        /* and training goes on from there to the same next state */
        if (s < STEPS) {
            ck_assert_int_eq(dcrw_trainer_step(t, TB, x, NULL, NULL), DCRW_OK);
            ck_assert(memcmp(dcrw_model_params(m, NULL), states + (s + 1) * n, n * sizeof(float)) ==
                      0);
        }
        dcrw_trainer_destroy(t);
        dcrw_model_destroy(m);
        leftovers += clean_tmp(dir, "train.safetensors");
    }
    printf("crashsafe: %d kills during training with a save per step (%ld us per step): "
           "latest step seen %d, %d temporary files left\n",
           ntrials, per_step, steps_seen_max, leftovers);
    if (ntrials >= 50) ck_assert_int_gt(steps_seen_max, 1);
    free(states);
    free(x);
    dcrw_model_destroy(m0);
    tu_rmdir(dir);
}
END_TEST

/* A child that saves with RLIMIT_FSIZE = limit: the codes of the model
 * save and the trainer save, packed in its exit status. */
static int save_with_limit(const dcrw_model *m, const dcrw_trainer *t, const char *path,
                           rlim_t limit) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close_inherited();
        signal(SIGXFSZ, SIG_IGN); /* so that write() fails with EFBIG instead */
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(100);
        int r1 = -dcrw_model_save(m, path);
        int r2 = t ? -dcrw_trainer_save(t, path) : 0;
        _exit(r1 * 16 + r2);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "the writer died (status %d)", st);
    ck_assert_int_ne(WEXITSTATUS(st), 100);
    return WEXITSTATUS(st);
}

START_TEST(test_disk_full) {
    dcrw_set_threads(1);
    dcrw_config c = tiny();
    dcrw_model *a, *b;
    ck_assert_int_eq(dcrw_model_create(&a, &c, 1), DCRW_OK);
    ck_assert_int_eq(dcrw_model_create(&b, &c, 2), DCRW_OK);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 1;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, b, &tc), DCRW_OK);
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/old.safetensors", dir);
    /* the sizes of the files the two saves would write */
    ck_assert_int_eq(dcrw_model_save(b, path), DCRW_OK);
    size_t model_len, trainer_len, old_len;
    free(tu_read_file(path, &model_len));
    ck_assert_int_eq(dcrw_trainer_save(t, path), DCRW_OK);
    free(tu_read_file(path, &trainer_len));
    ck_assert_uint_gt(trainer_len, model_len);

    ck_assert_int_eq(dcrw_model_save(a, path), DCRW_OK);
    unsigned char *old = tu_read_file(path, &old_len);
    /* limits that cut the new file anywhere: before the length, inside the
     * header, inside the data, one byte short */
    const rlim_t limits[] = {0, 1, 7, 8, 100, model_len / 2, model_len - 4, model_len - 1};
    int cases = 0;
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        int st = save_with_limit(b, t, path, limits[k]);
        ck_assert_msg(st == (-DCRW_EIO) * 16 + (-DCRW_EIO),
                      "limit %lu: model save gave %d, trainer save %d, expected EIO (%d) twice",
                      (unsigned long)limits[k], -(st / 16), -(st % 16), DCRW_EIO);
        size_t len;
        unsigned char *now = tu_read_file(path, &len);
        ck_assert_msg(len == old_len && memcmp(now, old, len) == 0,
                      "limit %lu: the old checkpoint changed", (unsigned long)limits[k]);
        free(now);
        ck_assert_int_eq(clean_tmp(dir, "old.safetensors"), 0);
        dcrw_model *m;
        ck_assert_int_eq(dcrw_model_load(&m, path), DCRW_OK);
        dcrw_model_destroy(m);
        cases++;
    }
    /* room for the model file but not the trainer's */
    int st = save_with_limit(b, t, path, model_len);
    ck_assert_int_eq(st, 0 * 16 + (-DCRW_EIO));
    ck_assert_int_eq(clean_tmp(dir, "old.safetensors"), 0);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_load(&m, path), DCRW_OK);
    size_t np;
    const float *pm = dcrw_model_params(m, &np);
    ck_assert(memcmp(pm, dcrw_model_params(b, NULL), np * sizeof *pm) == 0);
    dcrw_model_destroy(m);
    /* and with room enough, both succeed */
    ck_assert_int_eq(save_with_limit(b, t, path, trainer_len), 0);
    printf("crashsafe: %d disk-full limits, every save EIO with the old file intact\n", cases);
    free(old);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(a);
    dcrw_model_destroy(b);
    tu_rmdir(dir);
}
END_TEST

/* The folder is read-only (or the path's folder is missing): EIO, nothing
 * changes. Root ignores permissions, so only the missing folder is run. */
START_TEST(test_unwritable) {
    dcrw_config c = tiny();
    dcrw_model *a;
    ck_assert_int_eq(dcrw_model_create(&a, &c, 1), DCRW_OK);
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    ck_assert_int_eq(dcrw_model_save(a, path), DCRW_EIO);
    snprintf(path, sizeof path, "%s", dir); /* a folder, not a file */
    ck_assert_int_eq(dcrw_model_save(a, path), DCRW_EIO);
    dcrw_model_destroy(a);
    tu_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("crashsafe");
    TCase *tc = tcase_create("crashsafe");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_kill_during_model_save);
    tcase_add_test(tc, test_kill_during_training);
    tcase_add_test(tc, test_disk_full);
    tcase_add_test(tc, test_unwritable);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
