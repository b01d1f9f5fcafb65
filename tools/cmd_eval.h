/* `hypercomp eval`: codec quality over every tensor of a safetensors file. */
#ifndef HYPERCOMP_CMD_EVAL_H
#define HYPERCOMP_CMD_EVAL_H

int cmd_eval(int argc, char **argv);

#endif
