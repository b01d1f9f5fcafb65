/* hypercomp: compress, measure and inspect neural-network weights from the command line. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_archive.h"
#include "cmd_bench.h"
#include "cmd_eval.h"
#include "hypercomp/hypercomp.h"

static const cli_command commands[] = {
    { "compress", "compress a safetensors file into a .hcz container (with an HTML report)", cmd_compress },
    { "decompress", "decode a .hcz container back into a safetensors file", cmd_decompress },
    { "info", "list the tensors, codecs, sizes and errors stored in a .hcz container", cmd_info },
    { "bench", "benchmark a codec on a synthetic matrix against BLAS sgemv", cmd_bench },
    { "eval", "compress every tensor of a safetensors file and report bpw and error", cmd_eval },
    { NULL, NULL, NULL },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: hypercomp COMMAND [OPTIONS]\n\ncommands:\n");
    for (const cli_command *c = commands; c->name; c++)
        fprintf(f, "  %-12s %s\n", c->name, c->summary);
    fprintf(f, "\n`hypercomp COMMAND --help` describes a command.\n"
               "exit codes: 0 success, 1 the library reported an error, 2 bad command line,\n"
               "            3 a quality gate was not met\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("hypercomp %s\n", hc_version_string());
        return CLI_OK;
    }
    for (const cli_command *c = commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "hypercomp: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
