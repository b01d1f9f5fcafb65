#include "cli_util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- options ---- */

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+')
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return 0;
    *out = v;
    return 1;
}

static const cli_option *find_option(const cli_option *opts, const char *name, size_t len)
{
    for (const cli_option *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static int set_option(const cli_option *o, const char *value, const char *cmd)
{
    uint64_t v;
    switch (o->type) {
    case CLI_OPT_FLAG:
        *(int *)o->target = 1;
        return CLI_OK;
    case CLI_OPT_STRING:
        *(const char **)o->target = value;
        return CLI_OK;
    case CLI_OPT_U32:
        if (!parse_u64(value, UINT32_MAX, &v))
            return cli_error(CLI_USAGE, cmd, "--%s needs a whole number from 0 to %" PRIu32 ", not '%s'", o->name,
                             UINT32_MAX, value);
        *(uint32_t *)o->target = (uint32_t)v;
        return CLI_OK;
    case CLI_OPT_U64:
        if (!parse_u64(value, UINT64_MAX, &v))
            return cli_error(CLI_USAGE, cmd, "--%s needs a whole number, not '%s'", o->name, value);
        *(uint64_t *)o->target = v;
        return CLI_OK;
    }
    return CLI_USAGE;
}

int cli_parse(cli_args *out, int argc, char **argv, const cli_option *opts)
{
    const char *cmd = argc > 0 ? argv[0] : "?";
    memset(out, 0, sizeof *out);
    out->cmd = cmd;
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (out->n_positional == (int)(sizeof out->positional / sizeof out->positional[0]))
                return cli_error(CLI_USAGE, cmd, "too many arguments ('%s')", a);
            out->positional[out->n_positional++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            out->help = 1;
            continue;
        }
        if (a[1] != '-')
            return cli_error(CLI_USAGE, cmd, "unknown option '%s' (options are spelled --name)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_option *o = find_option(opts, name, len);
        if (!o)
            return cli_error(CLI_USAGE, cmd, "unknown option '%.*s' (see `hypercomp %s --help`)", (int)len + 2, a, cmd);
        const char *value = NULL;
        if (o->type == CLI_OPT_FLAG) {
            if (eq)
                return cli_error(CLI_USAGE, cmd, "--%s takes no value", o->name);
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return cli_error(CLI_USAGE, cmd, "--%s needs a value (%s)", o->name, o->metavar ? o->metavar : "VALUE");
        }
        int rc = set_option(o, value, cmd);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

void cli_print_help(FILE *f, const char *usage, const char *description, const cli_option *opts)
{
    fprintf(f, "usage: %s\n\n%s\n\noptions:\n", usage, description);
    for (const cli_option *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(f, "  %-22s %s\n", left, o->help);
    }
    fprintf(f, "  %-22s %s\n", "--help", "show this help");
}

int cli_error(int code, const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hypercomp %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_lib_error(const char *cmd, int status)
{
    return cli_error(CLI_FAILED, cmd, "%s (%s)", hc_last_error(), hc_status_name(status));
}

/* ---- tables ---- */

void cli_table_header(FILE *f, const cli_column *cols, int n)
{
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%*s", i ? "  " : "", cols[i].left ? -cols[i].width : cols[i].width, cols[i].title);
    fputc('\n', f);
    cli_table_rule(f, cols, n);
}

void cli_table_rule(FILE *f, const cli_column *cols, int n)
{
    for (int i = 0; i < n; i++) {
        fputs(i ? "  " : "", f);
        for (int k = 0; k < cols[i].width; k++)
            fputc('-', f);
    }
    fputc('\n', f);
}

void cli_table_row(FILE *f, const cli_column *cols, int n, const char *const *cells)
{
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%*s", i ? "  " : "", cols[i].left ? -cols[i].width : cols[i].width, cells[i] ? cells[i] : "");
    fputc('\n', f);
}

/* ---- JSON ---- */

int cli_json_add_number(json_object *obj, const char *key, double v)
{
    /* json-c prints a NULL member as null */
    if (!isfinite(v))
        return json_object_object_add(obj, key, NULL) == 0 ? 0 : -1;
    json_object *d = json_object_new_double(v);
    return d ? cli_json_add(obj, key, d) : -1;
}

int cli_json_add_int(json_object *obj, const char *key, int64_t v)
{
    json_object *d = json_object_new_int64(v);
    return d ? cli_json_add(obj, key, d) : -1;
}

int cli_json_add_string(json_object *obj, const char *key, const char *v)
{
    json_object *d = json_object_new_string(v);
    return d ? cli_json_add(obj, key, d) : -1;
}

json_object *cli_json_shape(uint32_t ndim, const int64_t *shape)
{
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; a && i < ndim; i++) {
        json_object *d = json_object_new_int64(shape[i]);
        if (!d || json_object_array_add(a, d) != 0) {
            json_object_put(d);
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

int cli_json_add(json_object *obj, const char *key, json_object *val)
{
    if (!val || json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

int cli_json_print(FILE *f, json_object *obj, const char *cmd)
{
    const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        return cli_error(CLI_FAILED, cmd, "out of memory formatting the JSON output");
    if (fputs(s, f) == EOF || fputc('\n', f) == EOF || fflush(f) != 0)
        return cli_error(CLI_FAILED, cmd, "cannot write the JSON output: %s", strerror(errno));
    return CLI_OK;
}

/* ---- tensors ---- */

void cli_format_shape(char *buf, size_t size, uint32_t ndim, const int64_t *shape)
{
    if (ndim == 0) {
        snprintf(buf, size, "scalar");
        return;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < ndim && used < size; i++) {
        int k = snprintf(buf + used, size - used, "%s%" PRId64, i ? "x" : "", shape[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* binary16 to binary32, exactly (every binary16 value is a binary32 value). */
static float f16_value(uint16_t h)
{
    int exp = (h >> 10) & 0x1f;
    int mant = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexpf((float)(mant | 0x400), exp - 25);
    return (h & 0x8000) ? -v : v;
}

static float bf16_value(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

double cli_sum_squares(const hc_tensor_view *v, int64_t n)
{
    double s = 0;
    if (v->dtype == HC_DTYPE_F32) {
        const float *p = v->data;
        for (int64_t i = 0; i < n; i++)
            s += (double)p[i] * p[i];
        return s;
    }
    const uint16_t *p = v->data;
    for (int64_t i = 0; i < n; i++) {
        double x = v->dtype == HC_DTYPE_F16 ? f16_value(p[i]) : bf16_value(p[i]);
        s += x * x;
    }
    return s;
}
