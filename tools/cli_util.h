/* Helpers every subcommand shares: option parsing, error reporting, aligned tables, JSON output
 * and a few tensor utilities. */
#ifndef HYPERCOMP_CLI_UTIL_H
#define HYPERCOMP_CLI_UTIL_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "hypercomp/hypercomp.h"

/* ---- options ---- */

typedef enum cli_opt_type {
    CLI_OPT_FLAG,     /* no value; sets an int to 1 */
    CLI_OPT_STRING,   /* const char *: points into argv */
    CLI_OPT_U32,      /* uint32_t, decimal */
    CLI_OPT_U64       /* uint64_t, decimal */
} cli_opt_type;

typedef struct cli_option {
    const char *name;     /* long name without the dashes: "codec" for --codec */
    cli_opt_type type;
    void *target;         /* int, const char *, uint32_t or uint64_t */
    const char *metavar;  /* shown in --help, e.g. "SPEC"; NULL for flags */
    const char *help;     /* one line */
} cli_option;

typedef struct cli_args {
    const char *cmd;          /* the subcommand, for messages */
    const char *positional[8];
    int n_positional;
    int help;                 /* --help or -h was given */
} cli_args;

/* Parses argv[1..] (argv[0] is the subcommand) against opts (terminated by a NULL name).
 * Accepts `--name value` and `--name=value`; `--` ends the options. Returns CLI_OK, or CLI_USAGE
 * after printing a message naming the bad argument to stderr. */
int cli_parse(cli_args *out, int argc, char **argv, const cli_option *opts);

/* Prints "usage: ...", the description and one line per option. */
void cli_print_help(FILE *f, const char *usage, const char *description, const cli_option *opts);

/* Prints "hypercomp CMD: message" to stderr and returns code. */
int cli_error(int code, const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Reports a library failure (its status name and hc_last_error()) and returns CLI_FAILED. */
int cli_lib_error(const char *cmd, int status);

/* ---- tables ---- */

typedef struct cli_column {
    const char *title;
    int width;
    int left;    /* left-aligned (names); numbers are right-aligned */
} cli_column;

void cli_table_header(FILE *f, const cli_column *cols, int n);
void cli_table_rule(FILE *f, const cli_column *cols, int n);
void cli_table_row(FILE *f, const cli_column *cols, int n, const char *const *cells);

/* ---- JSON ---- */

/* A shape as an array of integers. */
json_object *cli_json_shape(uint32_t ndim, const int64_t *shape);
/* Adds key -> val to obj; returns 0, or -1 (and frees val) when out of memory (val NULL included). */
int cli_json_add(json_object *obj, const char *key, json_object *val);
/* Adds a number, or null for NaN and infinities (which JSON cannot hold); 0 or -1 on OOM. */
int cli_json_add_number(json_object *obj, const char *key, double v);
int cli_json_add_int(json_object *obj, const char *key, int64_t v);
int cli_json_add_string(json_object *obj, const char *key, const char *v);
/* Writes obj, pretty-printed, and a newline; returns CLI_OK or CLI_FAILED on a write error. */
int cli_json_print(FILE *f, json_object *obj, const char *cmd);

/* ---- tensors ---- */

/* "480x480x1x1"; "scalar" for 0-D. */
void cli_format_shape(char *buf, size_t size, uint32_t ndim, const int64_t *shape);
/* sum of w^2 over a view's n elements, in double. */
double cli_sum_squares(const hc_tensor_view *v, int64_t n);

#endif
