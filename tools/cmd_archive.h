/* The container subcommands: compress, decompress, info (tools/cmd_*.c). */
#ifndef HYPERCOMP_CMD_ARCHIVE_H
#define HYPERCOMP_CMD_ARCHIVE_H

#include <stddef.h>

int cmd_compress(int argc, char **argv);
int cmd_decompress(int argc, char **argv);
int cmd_info(int argc, char **argv);

/* The codec names this build accepts in --codec, comma separated, found by asking the library. */
void cmd_codec_names(char *buf, size_t size);

#endif
