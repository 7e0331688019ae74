/*
 * check.h - the C tests' assertion: CHECK(cond, fmt, ...) reports a failed
 * condition with its place and goes on; main exits non-zero when
 * failures > 0. One translation unit per test program includes it.
 */
#ifndef FS_CHECK_H
#define FS_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                                                      \
	do {                                                                                                  \
		if (!(cond)) {                                                                                \
			failures++;                                                                           \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                      \
			fprintf(stderr, __VA_ARGS__);                                                         \
			fputc('\n', stderr);                                                                  \
		}                                                                                             \
	} while (0)

#endif
