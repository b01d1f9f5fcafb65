/* The hypercomp command-line tool: one file per subcommand, this table joins them. */
#ifndef HYPERCOMP_CLI_H
#define HYPERCOMP_CLI_H

/* Exit codes, documented in `hypercomp --help` and doc/cli.md. */
enum {
    CLI_OK = 0,        /* success */
    CLI_FAILED = 1,    /* the library reported an error (message on stderr) */
    CLI_USAGE = 2,     /* bad command line */
    CLI_QUALITY = 3    /* a quality gate was not met */
};

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

#endif
