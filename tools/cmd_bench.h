/* `hypercomp bench`: synthetic-matrix benchmark of a codec against BLAS sgemv. */
#ifndef HYPERCOMP_CMD_BENCH_H
#define HYPERCOMP_CMD_BENCH_H

int cmd_bench(int argc, char **argv);

#endif
