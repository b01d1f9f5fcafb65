/* Progress on stderr (see progress.h). The bar is redrawn in place with a carriage return, so
 * redirecting stderr to a file gives readable lines instead of control characters. */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void progress_init(progress *p, const char *verb, size_t total, int quiet)
{
    memset(p, 0, sizeof *p);
    p->verb = verb;
    p->total = total;
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
}

void progress_step(progress *p, size_t done, const char *name, const char *detail)
{
    if (p->quiet)
        return;
    if (!p->tty) {
        fprintf(stderr, "%s: [%zu/%zu] %s  %s\n", p->verb, done, p->total, name, detail);
        return;
    }
    enum { WIDTH = 30 };
    size_t fill = p->total ? done * WIDTH / p->total : WIDTH;
    char bar[WIDTH + 1];
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[WIDTH] = '\0';
    /* keep the line within 100 columns so it never wraps on a normal terminal */
    fprintf(stderr, "\r\033[K%s [%s] %3zu%% %zu/%zu  %.40s", p->verb, bar, p->total ? 100 * done / p->total : 100,
            done, p->total, name);
    fflush(stderr);
    p->drawn = 1;
}

void progress_end(progress *p)
{
    if (p->drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        p->drawn = 0;
    }
}
