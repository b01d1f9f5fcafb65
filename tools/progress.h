/* Progress on stderr: a redrawn bar on a terminal, one plain line per item otherwise, nothing
 * when quiet. */
#ifndef HYPERCOMP_PROGRESS_H
#define HYPERCOMP_PROGRESS_H

#include <stddef.h>

typedef struct progress {
    const char *verb;   /* "compress", "decompress" */
    size_t total;
    int tty;            /* stderr is a terminal: redraw one line */
    int quiet;
    int drawn;          /* a bar is on screen and must be cleared before other output */
} progress;

void progress_init(progress *p, const char *verb, size_t total, int quiet);
/* Item `done` (1-based) named `name` finished; detail is a short result ("nf4 4.13 bpw err 0.09"). */
void progress_step(progress *p, size_t done, const char *name, const char *detail);
/* Clears the bar so that the next output starts on a clean line. */
void progress_end(progress *p);

#endif
