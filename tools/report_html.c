/* The report as one self-contained HTML page: inline SVG charts, inline CSS, a few lines of
 * inline script to sort the table; no external resource of any kind. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report.h"

#define CHART_W 1120.0
#define PLOT_L 64.0      /* room for the y axis labels */
#define PLOT_R 16.0

static const char *const palette[] = { "#2f6fde", "#e8743b", "#19a979", "#945ecf", "#ed4a7b",
                                        "#13a4b4", "#bf8f00", "#6c8893" };
#define KEPT_COLOR "#b7bec7"

typedef struct codec_colors {
    const char *codec[16];
    size_t n;
} codec_colors;

static const char *color_of(codec_colors *cc, const char *codec)
{
    if (strcmp(codec, "kept") == 0)
        return KEPT_COLOR;
    for (size_t i = 0; i < cc->n; i++)
        if (strcmp(cc->codec[i], codec) == 0)
            return palette[i % 8];
    if (cc->n < 16)
        cc->codec[cc->n++] = codec;
    return palette[(cc->n - 1) % 8];
}

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void shape_str(char *buf, size_t size, const report_tensor *t)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t d = 0; d < t->ndim && used < size; d++) {
        int n = snprintf(buf + used, size - used, "%s%lld", d ? "×" : "", (long long)t->shape[d]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (t->ndim == 0)
        snprintf(buf, size, "scalar");
}

static const char *fmt_err(char *buf, size_t size, double e)
{
    if (!isfinite(e))
        snprintf(buf, size, "–");
    else if (e == 0)
        snprintf(buf, size, "0 (exact)");
    else if (e < 0.001)
        snprintf(buf, size, "%.2e", e);
    else
        snprintf(buf, size, "%.4f", e);
    return buf;
}

static double nice_step(double range, int target)
{
    double raw = range / target, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

static const char css[] =
    "*{box-sizing:border-box}body{margin:0;background:#f3f5f8;color:#1d2733;"
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}"
    ".wrap{max-width:1200px;margin:0 auto;padding:28px 32px 48px}"
    "header h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}header .sub{color:#5b6878}"
    "code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#e8ecf1;padding:1px 5px;border-radius:4px}"
    ".cards{display:grid;grid-template-columns:repeat(5,1fr);gap:14px;margin:22px 0}"
    ".card{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(20,30,50,.08),0 2px 10px rgba(20,30,50,.04)}"
    ".card .k{color:#5b6878;font-size:12px;text-transform:uppercase;letter-spacing:.06em}"
    ".card .v{font-size:25px;font-weight:650;margin-top:2px}.card .d{color:#5b6878;font-size:12.5px}"
    ".card.hero{background:linear-gradient(135deg,#2f6fde,#5b8df0);color:#fff}.card.hero .k,.card.hero .d{color:#dce7ff}"
    "section{background:#fff;border-radius:10px;padding:18px 20px 14px;margin:0 0 18px;"
    "box-shadow:0 1px 2px rgba(20,30,50,.08),0 2px 10px rgba(20,30,50,.04)}"
    "section h2{font-size:17px;margin:0 0 2px}section .note{color:#5b6878;margin:0 0 10px;font-size:13px}"
    "svg text{font-family:inherit}.legend{display:flex;flex-wrap:wrap;gap:14px;margin:6px 0 2px;font-size:13px}"
    ".legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}"
    "table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{padding:5px 8px;text-align:right;white-space:nowrap}"
    "th{position:sticky;top:0;background:#f7f9fb;border-bottom:1px solid #d5dbe3;cursor:pointer;user-select:none}"
    "td.l,th.l{text-align:left}tr:nth-child(even) td{background:#fafbfc}td.name{max-width:420px;overflow:hidden;text-overflow:ellipsis}"
    ".tbl{max-height:640px;overflow:auto}.pill{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:11.5px}"
    ".grid2{display:grid;grid-template-columns:2.2fr 1fr;gap:18px}.worst li{margin:3px 0}.worst{padding-left:18px;margin:4px 0}"
    "footer{color:#8893a0;font-size:12px;text-align:center;margin-top:24px}";

static const char sort_js[] =
    "document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){"
    "var tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';"
    "rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;"
    "if(x!==undefined&&y!==undefined){x=parseFloat(x);y=parseFloat(y);return asc?x-y:y-x}"
    "x=a.cells[i].textContent;y=b.cells[i].textContent;return asc?x.localeCompare(y):y.localeCompare(x)});"
    "rows.forEach(function(r){tb.appendChild(r)})})});";

static void card(FILE *f, const char *cls, const char *k, const char *v, const char *d)
{
    fprintf(f, "<div class=\"card %s\"><div class=\"k\">%s</div><div class=\"v\">%s</div><div class=\"d\">%s</div></div>\n",
            cls, k, v, d);
}

/* Horizontal bars: the original size and the container, split by codec. */
static void size_bars(FILE *f, const report *r, const report_totals *tot, codec_colors *cc)
{
    report_codec_total ct[32];
    size_t nc = report_codec_totals(r, ct, 32);
    double orig = (double)(r->source_bytes ? r->source_bytes : tot->orig_bytes);
    double comp = r->file_bytes ? (double)r->file_bytes : (double)tot->bits / 8;
    double w = CHART_W - 200, x0 = 150;
    char b1[32], b2[32];
    fprintf(f, "<svg width=\"%.0f\" height=\"118\" viewBox=\"0 0 %.0f 118\" role=\"img\">\n", CHART_W, CHART_W);
    fprintf(f, "<text x=\"0\" y=\"30\" font-size=\"13\" fill=\"#1d2733\">original</text>"
               "<rect x=\"%.0f\" y=\"14\" width=\"%.1f\" height=\"26\" rx=\"4\" fill=\"#d5dbe3\"/>"
               "<text x=\"%.1f\" y=\"31\" font-size=\"13\" fill=\"#1d2733\" text-anchor=\"end\">%s</text>\n",
            x0, w, x0 + w - 8, report_human_bytes(b1, sizeof b1, orig));
    fprintf(f, "<text x=\"0\" y=\"78\" font-size=\"13\" fill=\"#1d2733\">compressed</text>\n");
    double x = x0, scale = orig > 0 ? w / orig : 0;
    double overhead = comp * 8;
    for (size_t i = 0; i < nc; i++) {
        double bw = (double)ct[i].bits / 8 * scale;
        overhead -= (double)ct[i].bits;
        fprintf(f, "<rect x=\"%.1f\" y=\"62\" width=\"%.2f\" height=\"26\" fill=\"%s\"><title>%s: %s in %zu tensors</title></rect>\n",
                x, bw, color_of(cc, ct[i].codec), ct[i].codec, report_human_bytes(b1, sizeof b1, (double)ct[i].bits / 8),
                ct[i].tensors);
        x += bw;
    }
    if (overhead > 0)   /* header, directory and alignment padding */
        fprintf(f, "<rect x=\"%.1f\" y=\"62\" width=\"%.2f\" height=\"26\" fill=\"#39434f\"><title>container header, directory and padding: %s</title></rect>\n",
                x, overhead / 8 * scale, report_human_bytes(b1, sizeof b1, overhead / 8));
    x += overhead > 0 ? overhead / 8 * scale : 0;
    fprintf(f, "<text x=\"%.1f\" y=\"79\" font-size=\"13\" font-weight=\"600\" fill=\"#1d2733\">%s  ·  %.2f× smaller</text>\n",
            x + 10, report_human_bytes(b2, sizeof b2, comp), comp > 0 ? orig / comp : 0);
    fprintf(f, "<text x=\"%.0f\" y=\"110\" font-size=\"11.5\" fill=\"#5b6878\">%.3f bits per weight in the file, "
               "every header, scale, checksum and alignment byte counted</text>\n",
            x0, tot->file_bpw > 0 ? tot->file_bpw : tot->bpw);
    fprintf(f, "</svg>\n");
    /* legend with per-codec numbers */
    fprintf(f, "<div class=\"legend\">");
    for (size_t i = 0; i < nc; i++) {
        char e[32];
        double re = ct[i].ref_sq > 0 ? sqrt(ct[i].err_sq / ct[i].ref_sq) : NAN;
        fprintf(f, "<span><i style=\"background:%s\"></i><b>", color_of(cc, ct[i].codec));
        esc(f, ct[i].codec);
        fprintf(f, "</b> %zu tensors · %.2f M weights · %s · %.2f bpw · error %s</span>", ct[i].tensors,
                (double)ct[i].weights / 1e6, report_human_bytes(b1, sizeof b1, (double)ct[i].bits / 8),
                (double)ct[i].bits / (double)ct[i].weights, fmt_err(e, sizeof e, re));
    }
    fprintf(f, "<span><i style=\"background:#39434f\"></i>container overhead</span></div>\n");
}

/* One bar per tensor in file order; bars taller than the axis are clipped and labelled. */
static void bpw_chart(FILE *f, const report *r, codec_colors *cc)
{
    const double H = 250, top = 14, bottom = 30, ph = H - top - bottom, pw = CHART_W - PLOT_L - PLOT_R;
    double ymax = 0, allmax = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (!r->t[i].kept && r->t[i].bpw > ymax)
            ymax = r->t[i].bpw;
        if (r->t[i].bpw > allmax)
            allmax = r->t[i].bpw;
    }
    if (ymax <= 0)
        ymax = allmax;
    double step = nice_step(ymax * 1.15, 5);
    ymax = ceil(ymax * 1.15 / step) * step;
    fprintf(f, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", CHART_W, H, CHART_W, H);
    for (double v = 0; v <= ymax + 1e-9; v += step) {
        double y = top + ph - v / ymax * ph;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6eaef\"/>"
                   "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" fill=\"#5b6878\" text-anchor=\"end\">%g</text>\n",
                PLOT_L, CHART_W - PLOT_R, y, y, PLOT_L - 8, y + 4, v);
    }
    fprintf(f, "<text transform=\"translate(14,%.0f) rotate(-90)\" font-size=\"11.5\" fill=\"#5b6878\" text-anchor=\"middle\">bits per weight</text>\n",
            top + ph / 2);
    /* each bar as wide as its tensor's share of the weights (plus a hairline minimum), so the
     * coloured area is the bits: big tensors dominate exactly as much as they do in the file */
    double total = 0;
    for (size_t i = 0; i < r->n; i++)
        total += (double)r->t[i].numel;
    double minw = fmin(1.5, pw / (2.0 * (double)(r->n ? r->n : 1))), x = PLOT_L;
    for (size_t i = 0; i < r->n; i++) {
        const report_tensor *t = &r->t[i];
        double bw = minw + (pw - minw * (double)r->n) * (total > 0 ? (double)t->numel / total : 0);
        double v = t->bpw, h = (v > ymax ? ymax : v) / ymax * ph;
        char e[32], s[64];
        shape_str(s, sizeof s, t);
        fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" stroke=\"#fff\" "
                   "stroke-width=\"0.6\"><title>", x, top + ph - h, bw, h, color_of(cc, t->kept ? "kept" : t->codec));
        esc(f, t->name);
        fprintf(f, " [%s] %s: %.3f bpw, error %s</title></rect>\n", s, t->codec, v, fmt_err(e, sizeof e, t->rel_rmse));
        if (v > ymax && bw > 6)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#5b6878\" text-anchor=\"middle\">▲</text>\n",
                    x + bw / 2, top + 9);
        if (bw > 6.2 * (double)strlen(t->name) + 10) {   /* name the tensors wide enough to carry a label */
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10.5\" fill=\"#fff\" text-anchor=\"middle\">", x + bw / 2,
                    top + ph - 6);
            esc(f, t->name);
            fprintf(f, "</text>\n");
        }
        x += bw;
    }
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#8893a0\"/>\n", PLOT_L, CHART_W - PLOT_R,
            top + ph, top + ph);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11.5\" fill=\"#5b6878\" text-anchor=\"middle\">tensors in file "
               "order, each as wide as its share of the weights, so the area is the bits (hover for names; ▲: above the axis)</text>\n",
            PLOT_L + pw / 2, H - 8);
    fprintf(f, "</svg>\n");
}

/* Relative RMS error per tensor as dots on a log axis fitted to the data (ticks at 1, 2 and 5 per
 * decade); exact (kept) tensors sit on the floor in grey. Dots, not bars: a bar's length from an
 * arbitrary floor of a log axis would mean nothing. */
static void error_chart(FILE *f, const report *r, const report_totals *tot, codec_colors *cc)
{
    const double W = CHART_W * 0.66, H = 270, top = 14, bottom = 30, ph = H - top - bottom - 14, pw = W - PLOT_L - 8;
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < r->n; i++) {
        double e = r->t[i].rel_rmse;
        if (isfinite(e) && e > 0) {
            lo = fmin(lo, e);
            hi = fmax(hi, e);
        }
    }
    if (!(hi > 0)) {
        lo = 1e-6;
        hi = 1e-5;
    }
    double l0 = log10(lo), l1 = log10(hi), pad = fmax(0.12, (l1 - l0) * 0.08);
    l0 -= pad;
    l1 += pad;
    if (l1 - l0 < 0.7) {   /* at least a factor of 5 on screen, centred on the data */
        double mid = (l0 + l1) / 2;
        l0 = mid - 0.35;
        l1 = mid + 0.35;
    }
#define ERR_Y(lg) (top + ph - ((lg) - l0) / (l1 - l0) * ph)
    fprintf(f, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", W, H, W, H);
    int decades = (int)(l1 - l0);
    static const double mults[] = { 1, 2, 5 };
    for (int d = (int)floor(l0); d <= (int)ceil(l1); d++)
        for (int m = 0; m < 3; m++) {
            double v = mults[m] * pow(10, d), lg = log10(v);
            if (lg < l0 || lg > l1 || (decades >= 3 && m != 0))
                continue;
            double y = ERR_Y(lg);
            if (y > top + ph - 8)   /* leave the floor row to the "exact" label */
                continue;
            fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                       "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" fill=\"#5b6878\" text-anchor=\"end\">%.0fe%d</text>\n",
                    PLOT_L, W - 8, y, y, m ? "#f0f2f5" : "#e1e6ec", PLOT_L - 8, y + 4, mults[m], d);
        }
    fprintf(f, "<text transform=\"translate(14,%.0f) rotate(-90)\" font-size=\"11.5\" fill=\"#5b6878\" text-anchor=\"middle\">relative RMS error</text>\n",
            top + ph / 2);
    double slot = pw / (double)(r->n ? r->n : 1), floor_y = top + ph + 10;
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#8893a0\"/>\n", PLOT_L, W - 8, top + ph,
            top + ph);
    fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" font-size=\"10\" fill=\"#8893a0\" text-anchor=\"end\">exact</text>\n",
            PLOT_L - 8, floor_y + 3);
    for (size_t i = 0; i < r->n; i++) {
        const report_tensor *t = &r->t[i];
        double e = t->rel_rmse, x = PLOT_L + slot * ((double)i + 0.5);
        char s[32];
        if (!isfinite(e))
            continue;
        if (e == 0) {
            fprintf(f, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"3\" fill=\"" KEPT_COLOR "\"><title>", x - slot * 0.35,
                    floor_y - 1.5, slot * 0.7);
        } else {
            double y = ERR_Y(log10(e));
            fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.1f\" fill=\"%s\"%s><title>", x, y, slot > 8 ? 4.0 : 3.0,
                    color_of(cc, t->kept ? "kept" : t->codec),
                    t->numel < r->min_aggregate ? " fill-opacity=\"0.35\"" : " fill-opacity=\"0.9\"");
        }
        esc(f, t->name);
        fprintf(f, ": error %s, SNR %.1f dB</title>%s\n", fmt_err(s, sizeof s, e), t->snr_db, e == 0 ? "</rect>" : "</circle>");
    }
    if (isfinite(tot->rel_rmse) && tot->rel_rmse > 0) {
        double y = ERR_Y(log10(tot->rel_rmse));
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d62d20\" stroke-dasharray=\"5 4\"/>"
                   "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11.5\" fill=\"#d62d20\" stroke=\"#fff\" stroke-width=\"3\" "
                   "paint-order=\"stroke\">model %.2e</text>\n",
                PLOT_L, W - 8, y, y, PLOT_L + 6, y - 6, tot->rel_rmse);
    }
#undef ERR_Y
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11.5\" fill=\"#5b6878\" text-anchor=\"middle\">tensors in file order "
               "(faded: under %lld values, outside the model figure)</text>\n",
            PLOT_L + pw / 2, H - 6, (long long)r->min_aggregate);
    fprintf(f, "</svg>\n");
}

static int cmp_err_desc(const void *a, const void *b)
{
    const report_tensor *x = *(const report_tensor *const *)a, *y = *(const report_tensor *const *)b;
    double ex = isfinite(x->rel_rmse) ? x->rel_rmse : -1, ey = isfinite(y->rel_rmse) ? y->rel_rmse : -1;
    return ex < ey ? 1 : ex > ey ? -1 : 0;
}

static int cmp_size_desc(const void *a, const void *b)
{
    const report_tensor *x = *(const report_tensor *const *)a, *y = *(const report_tensor *const *)b;
    return x->orig_bytes < y->orig_bytes ? 1 : x->orig_bytes > y->orig_bytes ? -1 : 0;
}

static void worst_list(FILE *f, const report *r, const report_tensor **sorted)
{
    fprintf(f, "<div><h3 style=\"font-size:14px;margin:8px 0 4px\">Largest errors</h3><ol class=\"worst\">\n");
    size_t shown = 0;
    for (size_t i = 0; i < r->n && shown < 8; i++) {
        const report_tensor *t = sorted[i];
        if (!isfinite(t->rel_rmse) || t->kept)
            continue;
        char e[32];
        fprintf(f, "<li><code>");
        esc(f, t->name);
        fprintf(f, "</code><br><span style=\"color:#5b6878\">%s · %.1f dB · %lld values</span></li>\n",
                fmt_err(e, sizeof e, t->rel_rmse), t->snr_db, (long long)t->numel);
        shown++;
    }
    if (!shown)
        fprintf(f, "<li>no compressed tensor</li>");
    fprintf(f, "</ol></div>\n");
}

/* The largest tensors, original against compressed size. */
static void largest_chart(FILE *f, const report *r, const report_tensor **sorted, codec_colors *cc)
{
    size_t n = r->n < 16 ? r->n : 16;
    const double row = 24, x0 = 330, w = CHART_W - x0 - 210, H = row * (double)n + 10;
    double max = n ? (double)sorted[0]->orig_bytes : 1;
    fprintf(f, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", CHART_W, H, CHART_W, H);
    for (size_t i = 0; i < n; i++) {
        const report_tensor *t = sorted[i];
        double y = 4 + row * (double)i, ow = (double)t->orig_bytes / max * w, cw = (double)t->bits / 8 / max * w;
        char name[48], b1[32], b2[32];
        size_t len = strlen(t->name);
        if (len > 44)
            snprintf(name, sizeof name, "…%s", t->name + len - 42);
        else
            snprintf(name, sizeof name, "%s", t->name);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" font-size=\"12\" fill=\"#1d2733\" text-anchor=\"end\">", x0 - 10, y + 15);
        esc(f, name);
        fprintf(f, "<title>");
        esc(f, t->name);
        fprintf(f, "</title></text>"
                   "<rect x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" height=\"18\" rx=\"3\" fill=\"#e3e8ee\"/>"
                   "<rect x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" height=\"18\" rx=\"3\" fill=\"%s\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11.5\" fill=\"#5b6878\">%s → %s  (%.1f×)</text>\n",
                x0, y, ow, x0, y, cw < 1 ? 1 : cw, color_of(cc, t->kept ? "kept" : t->codec), x0 + ow + 8, y + 14,
                report_human_bytes(b1, sizeof b1, (double)t->orig_bytes),
                report_human_bytes(b2, sizeof b2, (double)t->bits / 8),
                t->bits ? (double)t->orig_bytes * 8 / (double)t->bits : 0);
    }
    fprintf(f, "</svg>\n");
}

/* Stage waterfall: for each stage (in order of first appearance), the model's bits per weight
 * after it, drawn as the step it adds, with the error after it. */
static void waterfall(FILE *f, const report *r)
{
    char names[16][64];
    double bits[16] = { 0 }, wts[16] = { 0 }, err[16] = { 0 }, ref[16] = { 0 };
    size_t ns = 0;
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < r->t[i].n_stages; k++) {
            const report_stage *s = &r->t[i].stages[k];
            size_t j = 0;
            while (j < ns && strcmp(names[j], s->name) != 0)
                j++;
            if (j == ns) {
                if (ns == 16)
                    continue;
                snprintf(names[ns++], sizeof names[0], "%s", s->name);
            }
            bits[j] += s->bpw * (double)r->t[i].numel;
            wts[j] += (double)r->t[i].numel;
            if (isfinite(s->rel_rmse)) {
                err[j] += s->rel_rmse * s->rel_rmse * r->t[i].ref_sq;
                ref[j] += r->t[i].ref_sq;
            }
        }
    if (!ns) {
        fprintf(f, "<p class=\"note\">This run used one codec for every tensor (<code>--codec</code>), so there are no "
                   "stages to compare. A pipeline run (<code>--pipeline</code>) draws here the bits each stage adds and "
                   "the error left after it.</p>\n");
        return;
    }
    fprintf(f, "<p class=\"note\">Each bar is the bits a stage adds, over every tensor it ran on; below it, the model "
               "error left after that stage.</p>\n");
    const double H = 260, top = 20, bottom = 40, ph = H - top - bottom, pw = CHART_W - PLOT_L - 70;
    double ymax = 0;
    for (size_t j = 0; j < ns; j++)
        ymax = fmax(ymax, bits[j] / wts[j]);
    double step = nice_step(ymax * 1.15, 5);
    ymax = ceil(ymax * 1.15 / step) * step;
    fprintf(f, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", CHART_W, H, CHART_W, H);
    for (double v = 0; v <= ymax + 1e-9; v += step) {
        double y = top + ph - v / ymax * ph;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6eaef\"/>"
                   "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" fill=\"#5b6878\" text-anchor=\"end\">%g</text>\n",
                PLOT_L, PLOT_L + pw, y, y, PLOT_L - 8, y + 4, v);
    }
    fprintf(f, "<text transform=\"translate(14,%.0f) rotate(-90)\" font-size=\"11.5\" fill=\"#5b6878\" "
               "text-anchor=\"middle\">bits per weight after the stage</text>\n", top + ph / 2);
    double slot = pw / (double)ns, prev = 0;
    for (size_t j = 0; j < ns; j++) {
        double b = bits[j] / wts[j], x = PLOT_L + slot * (double)j + slot * 0.2, w = slot * 0.6;
        double y0 = top + ph - fmax(prev, b) / ymax * ph, h = fabs(b - prev) / ymax * ph;
        double e = ref[j] > 0 ? sqrt(err[j] / ref[j]) : NAN;
        char es[32];
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"3\" fill=\"%s\"/>", x, y0, w,
                h < 1 ? 1 : h, b >= prev ? palette[j % 8] : "#8893a0");
        if (j > 0)
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#8893a0\" stroke-dasharray=\"3 3\"/>",
                    x - slot * 0.4, x, top + ph - prev / ymax * ph, top + ph - prev / ymax * ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"600\" fill=\"#1d2733\" text-anchor=\"middle\">%.2f bpw</text>",
                x + w / 2, y0 - 6, b);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#1d2733\" text-anchor=\"middle\">", x + w / 2,
                top + ph + 16);
        esc(f, names[j]);
        fprintf(f, "</text><text x=\"%.1f\" y=\"%.1f\" font-size=\"11.5\" fill=\"#d62d20\" text-anchor=\"middle\">error %s</text>\n",
                x + w / 2, top + ph + 32, fmt_err(es, sizeof es, e));
        prev = b;
    }
    fprintf(f, "</svg>\n");
}

static void table(FILE *f, const report *r, codec_colors *cc)
{
    fprintf(f, "<div class=\"tbl\"><table class=\"sortable\"><thead><tr><th>#</th><th class=\"l\">tensor</th>"
               "<th class=\"l\">shape</th><th class=\"l\">codec</th><th>values</th><th>original</th><th>stored</th>"
               "<th>bpw</th><th>rel. RMS error</th><th>SNR dB</th><th>max |err|</th><th>seconds</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < r->n; i++) {
        const report_tensor *t = &r->t[i];
        char s[64], b1[32], b2[32], e[32];
        shape_str(s, sizeof s, t);
        fprintf(f, "<tr><td data-v=\"%zu\">%zu</td><td class=\"l name\" title=\"", i, i);
        esc(f, t->name);
        fprintf(f, "\">");
        esc(f, t->name);
        fprintf(f, "</td><td class=\"l\">%s</td><td class=\"l\"><span class=\"pill\" style=\"background:%s\">", s,
                color_of(cc, t->kept ? "kept" : t->codec));
        esc(f, t->codec);
        fprintf(f, "</span></td><td data-v=\"%lld\">%lld</td><td data-v=\"%llu\">%s</td><td data-v=\"%llu\">%s</td>"
                   "<td data-v=\"%.6f\">%.3f</td><td data-v=\"%.9g\">%s</td><td data-v=\"%.4f\">%.1f</td>"
                   "<td data-v=\"%.9g\">%.3g</td><td data-v=\"%.4f\">%.3f</td></tr>\n",
                (long long)t->numel, (long long)t->numel, (unsigned long long)t->orig_bytes,
                report_human_bytes(b1, sizeof b1, (double)t->orig_bytes), (unsigned long long)t->bits / 8,
                report_human_bytes(b2, sizeof b2, (double)t->bits / 8), t->bpw, t->bpw,
                isfinite(t->rel_rmse) ? t->rel_rmse : -1, fmt_err(e, sizeof e, t->rel_rmse),
                isfinite(t->snr_db) ? t->snr_db : 999, t->snr_db, isfinite(t->max_abs_err) ? t->max_abs_err : -1,
                t->max_abs_err, t->seconds, t->seconds);
    }
    fprintf(f, "</tbody></table></div>\n");
}

int report_write_html(const report *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hypercomp: cannot write '%s': %s\n", path, strerror(errno));
        return 0;
    }
    report_totals tot;
    report_totals_compute(r, &tot);
    codec_colors cc = { { NULL }, 0 };
    for (size_t i = 0; i < r->n; i++)   /* colours in order of first appearance */
        (void)color_of(&cc, r->t[i].kept ? "kept" : r->t[i].codec);
    const report_tensor **sorted = malloc((r->n ? r->n : 1) * sizeof *sorted);
    if (!sorted) {
        fclose(f);
        fprintf(stderr, "hypercomp: out of memory writing '%s'\n", path);
        return 0;
    }
    char b1[32], b2[32], v[96], d[160], date[64];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>hypercomp report: ");
    esc(f, r->output);
    fprintf(f, "</title><style>%s</style></head><body><div class=\"wrap\">\n<header><h1>Compression report</h1>"
               "<div class=\"sub\"><code>", css);
    esc(f, r->source);
    fprintf(f, "</code> → <code>");
    esc(f, r->output);
    fprintf(f, "</code> with <code>");
    esc(f, r->spec);
    fprintf(f, "</code> · hypercomp %s · %s</div></header>\n<div class=\"cards\">\n", hc_version_string(), date);

    double orig = (double)(r->source_bytes ? r->source_bytes : tot.orig_bytes);
    double comp = r->file_bytes ? (double)r->file_bytes : (double)tot.bits / 8;
    snprintf(v, sizeof v, "%.2f×", comp > 0 ? orig / comp : 0);
    snprintf(d, sizeof d, "%s → %s", report_human_bytes(b1, sizeof b1, orig), report_human_bytes(b2, sizeof b2, comp));
    card(f, "hero", "smaller by", v, d);
    snprintf(v, sizeof v, "%.3f", tot.file_bpw > 0 ? tot.file_bpw : tot.bpw);
    snprintf(d, sizeof d, "bits per weight in the file (%.3f in tensors alone)", tot.bpw);
    card(f, "", "bits per weight", v, d);
    fmt_err(v, sizeof v, tot.rel_rmse);
    snprintf(d, sizeof d, "relative RMS over %.2f M weights in tensors of ≥ %lld values · SNR %.1f dB",
             (double)tot.agg_weights / 1e6, (long long)r->min_aggregate, tot.snr_db);
    card(f, "", "model error", v, d);
    snprintf(v, sizeof v, "%zu", tot.tensors);
    snprintf(d, sizeof d, "%zu compressed · %zu kept as they were · %.2f M weights", tot.tensors - tot.kept, tot.kept,
             (double)tot.weights / 1e6);
    card(f, "", "tensors", v, d);
    snprintf(v, sizeof v, "%.1f s", r->seconds);
    snprintf(d, sizeof d, "%.2f M weights per second", r->seconds > 0 ? (double)tot.weights / 1e6 / r->seconds : 0);
    card(f, "", "time", v, d);
    fprintf(f, "</div>\n");

    fprintf(f, "<section id=\"bytes\"><h2>Where the bytes go</h2><p class=\"note\">The original file against the container, split "
               "by codec; hover a segment for its size.</p>\n");
    size_bars(f, r, &tot, &cc);
    fprintf(f, "</section>\n");

    fprintf(f, "<section id=\"bpw\"><h2>Bits per weight, tensor by tensor</h2><p class=\"note\">Every side bit counted: "
               "headers, scales, codebooks and checksums. Grey: tensors kept as they were (small ones carry their "
               "header over few weights, hence their height; their width shows how little they weigh).</p>\n");
    bpw_chart(f, r, &cc);
    fprintf(f, "</section>\n");

    for (size_t i = 0; i < r->n; i++)
        sorted[i] = &r->t[i];
    qsort(sorted, r->n, sizeof *sorted, cmp_err_desc);
    fprintf(f, "<section id=\"error\"><h2>Error, tensor by tensor</h2><p class=\"note\">Relative RMS error ‖W − W′‖ / ‖W‖ on a "
               "log scale; the dashed line is the whole model's.</p><div class=\"grid2\"><div>\n");
    error_chart(f, r, &tot, &cc);
    fprintf(f, "</div>\n");
    worst_list(f, r, sorted);
    fprintf(f, "</div></section>\n");

    qsort(sorted, r->n, sizeof *sorted, cmp_size_desc);
    fprintf(f, "<section id=\"largest\"><h2>The largest tensors, before and after</h2><p class=\"note\">Grey: original size; "
               "colour: stored size.</p>\n");
    largest_chart(f, r, sorted, &cc);
    fprintf(f, "</section>\n");

    fprintf(f, "<section id=\"stages\"><h2>Stages</h2>\n");
    waterfall(f, r);
    fprintf(f, "</section>\n");

    fprintf(f, "<section id=\"tensors\"><h2>Every tensor</h2><p class=\"note\">Click a column to sort.</p>\n");
    table(f, r, &cc);
    fprintf(f, "</section>\n<footer>Written by <code>hypercomp compress</code>. The container's layout is described in "
               "doc/format.md.</footer></div><script>%s</script></body></html>\n", sort_js);
    free(sorted);
    int ok = !ferror(f);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "hypercomp: cannot write '%s': %s\n", path, strerror(errno));
    return ok;
}
