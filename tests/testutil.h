/* Helpers shared by the Check suites: golden files, random fills, and
 * comparison with a tolerance that says where it failed. */
#ifndef DCRW_TESTUTIL_H
#define DCRW_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "dcrw/dcrw.h"
#include "safetensors.h"

/* Path of a file under tests/ (DCRW_TEST_DATA, set by meson); static buffer. */
const char *tu_path(const char *rel);

/* A fresh temporary directory (removed by tu_rmdir); static buffer per call
 * is not shared: the result is malloc'ed. */
char *tu_tmpdir(void);
void tu_rmdir(char *dir);

/* The whole file at path, malloc'ed (one spare byte); *n its size. Fails
 * the test if it cannot be read. */
unsigned char *tu_read_file(const char *path, size_t *n);

/* Entries of dir other than . and .. */
int tu_count_entries(const char *dir);

/* Deterministic uniform fill in [lo, hi). */
void tu_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed);

/* max |a - b| / max(max |b|, floor) */
double tu_rel_err(const float *a, const float *b, size_t n, double floor);

/* Read golden tensor `name` from a parsed file into a malloc'ed float buffer. */
float *tu_st_floats(const st_file *f, const char *name, size_t *count);

/* Run a suite and return the process exit status (0 if all passed). */
int tu_run(Suite *s);

#endif
