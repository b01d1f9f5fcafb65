/* hypercomp decompress: .hcz container in, safetensors out, one tensor in memory at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_archive.h"
#include "cli_util.h"
#include "cmd_args.h"
#include "hypercomp/hypercomp.h"
#include "progress.h"

static const char decompress_help[] =
    "usage: hypercomp decompress IN.hcz -o OUT.safetensors [OPTIONS]\n"
    "\n"
    "Decodes every tensor of a container back into a safetensors file, with the source file's\n"
    "metadata. Lossy codecs give back their approximation; kept tensors come back bit for bit.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     the safetensors file to write (required; written to a temporary file\n"
    "                        and renamed, so a failure never leaves half a file)\n"
    "  --dtype TYPE          f32, f16 or bf16 for every tensor (default: each tensor's original dtype)\n"
    "  -q, --quiet           print nothing but errors\n"
    "  -h, --help            this text\n"
    "\n"
    "example:\n"
    "  hypercomp decompress model.hcz -o model.decoded.safetensors --dtype f32\n"
    "\n"
    "exit codes: 0 success, 1 an error (message on stderr), 2 bad command line\n";

int cmd_decompress(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *dt = NULL;
    int quiet = 0, have_dtype = 0;
    hc_dtype dtype = HC_DTYPE_F32;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(decompress_help, stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else if ((r = arg_value(argc, argv, &i, "--output", "-o", &v, "decompress")) != 0) {
            if (r < 0)
                return CLI_USAGE;
            out = v;
        } else if ((r = arg_value(argc, argv, &i, "--dtype", NULL, &v, "decompress")) != 0) {
            if (r < 0)
                return CLI_USAGE;
            dt = v;
            if (!arg_dtype(v, &dtype)) {
                fprintf(stderr, "hypercomp decompress: --dtype '%s' is not f32, f16 or bf16\n", dt);
                return CLI_USAGE;
            }
            have_dtype = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hypercomp decompress: unknown option '%s' (see `hypercomp decompress --help`)\n", argv[i]);
            return CLI_USAGE;
        } else if (!in) {
            in = argv[i];
        } else {
            fprintf(stderr, "hypercomp decompress: unexpected argument '%s'; one input file is expected\n", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "hypercomp decompress: %s\nusage: hypercomp decompress IN.hcz -o OUT.safetensors "
                        "[--dtype f32|f16|bf16] (see --help)\n",
                !in ? "no input file given" : "no output file given (-o OUT.safetensors)");
        return CLI_USAGE;
    }
    hc_archive *a = NULL;
    hc_safetensors_writer *w = NULL;
    int rc = hc_archive_open(&a, in, 0);
    if (rc == HC_OK)
        rc = hc_safetensors_writer_new(&w, out);
    /* give back the source file's own metadata */
    static const char prefix[] = "safetensors.";
    for (size_t i = 0; rc == HC_OK && i < hc_archive_metadata_count(a); i++) {
        const char *key = hc_archive_metadata_key(a, i);
        if (strncmp(key, prefix, sizeof prefix - 1) == 0)
            rc = hc_safetensors_writer_set_metadata(w, key + sizeof prefix - 1, hc_archive_metadata(a, key));
    }
    size_t n = hc_archive_count(a);
    progress pg;
    progress_init(&pg, "decompress", n, quiet);
    for (size_t i = 0; i < n && rc == HC_OK; i++) {
        hc_ctensor *ct = NULL;
        const char *name = hc_archive_name(a, i);
        if ((rc = hc_archive_tensor(&ct, a, i)) != HC_OK)
            break;
        hc_ctensor_set_threads(ct, 0);
        hc_tensor_view v = HC_TENSOR_VIEW_INIT;
        v.name = name;
        v.dtype = have_dtype ? dtype : hc_ctensor_orig_dtype(ct);
        v.ndim = hc_ctensor_ndim(ct);
        hc_ctensor_shape(ct, v.shape);
        size_t bytes = (size_t)hc_ctensor_numel(ct) * hc_dtype_size(v.dtype);
        void *buf = malloc(bytes ? bytes : 1);
        if (!buf) {
            fprintf(stderr, "hypercomp decompress: out of memory for tensor '%s' (%zu bytes)\n", name, bytes);
            hc_ctensor_free(ct);
            rc = HC_ENOMEM;
            break;
        }
        rc = hc_ctensor_decode(ct, v.dtype, buf, bytes);
        v.data = buf;
        if (rc == HC_OK)
            rc = hc_safetensors_writer_add(w, &v);
        if (rc == HC_OK)
            progress_step(&pg, i + 1, name, hc_dtype_name(v.dtype));
        free(buf);
        hc_ctensor_free(ct);
    }
    progress_end(&pg);
    if (rc == HC_OK)
        rc = hc_safetensors_writer_finish(w);
    if (rc != HC_OK)
        cli_lib_error("decompress", rc);
    else if (!quiet)
        printf("%s -> %s: %zu tensors decoded%s%s\n", in, out, n, have_dtype ? " as " : "",
               have_dtype ? hc_dtype_name(dtype) : "");
    hc_safetensors_writer_free(w);
    hc_archive_close(a);
    return exit_code_for(rc);
}
