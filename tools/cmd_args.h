/* Option helpers for compress, decompress and info, which need what cli_parse() does not
 * offer: short options (-o, -q, -v) and a repeatable option (--keep). */
#ifndef HYPERCOMP_CMD_ARGS_H
#define HYPERCOMP_CMD_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/common.h"

/* If argv[*i] is `opt VALUE` or `opt=VALUE` (or the short form `sopt VALUE`), stores VALUE,
 * advances *i past it and returns 1; returns -1 (after a message) when the value is missing;
 * 0 when argv[*i] is another argument. */
int arg_value(int argc, char **argv, int *i, const char *opt, const char *sopt, const char **value,
              const char *cmd);

/* Parses a non-negative integer of at most max; prints a message naming opt on failure. */
int arg_uint(const char *cmd, const char *opt, const char *s, uint64_t max, uint64_t *out);

/* Parses f32 / f16 / bf16 (any case). */
int arg_dtype(const char *s, hc_dtype *out);

/* Exit code for a library status (see cli.h). */
int exit_code_for(int status);

#endif
