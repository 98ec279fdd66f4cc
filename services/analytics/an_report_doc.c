//  an_report_doc.c — a store report's one-page PDF with cairo
//  (an_report_doc.h).
#include "an_report_doc.h"
#include "tl_buf.h"
#include "tl_error.h"

#include <assert.h>
#include <cairo.h>
#include <cairo-pdf.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PAGE_W    595.0           //  A4 in points
#define S_PAGE_H    842.0
#define S_MARGIN    50.0

typedef struct {
    int64_t store_id;
    an_report_figures_t figures;
} s_row_t;

struct _an_report_doc_t {
    char now [41];
    size_t stores;
    int64_t up [3], down [3];
    s_row_t top [AN_REPORT_TOP];    //  most downtime in the week first
    size_t ntop;
};

an_report_doc_t *
an_report_doc_new (void)
{
    return (an_report_doc_t *) calloc (1, sizeof (an_report_doc_t));
}

void
an_report_doc_destroy (an_report_doc_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

//  True when a ranks before b: more downtime in the week, then lower id.
static bool
s_before (const s_row_t *a, const s_row_t *b)
{
    if (a->figures.down_us [AN_WEEK] != b->figures.down_us [AN_WEEK])
        return a->figures.down_us [AN_WEEK] > b->figures.down_us [AN_WEEK];
    return a->store_id < b->store_id;
}

void
an_report_doc_add (an_report_doc_t *self, int64_t store_id, const an_report_figures_t *figures)
{
    assert (self && figures);
    self->stores++;
    for (int w = 0; w < 3; w++) {
        self->up [w] += figures->up_us [w];
        self->down [w] += figures->down_us [w];
    }
    s_row_t row = { store_id, *figures };
    if (self->ntop == AN_REPORT_TOP && !s_before (&row, &self->top [AN_REPORT_TOP - 1]))
        return;
    size_t at = self->ntop < AN_REPORT_TOP ? self->ntop++ : AN_REPORT_TOP - 1;
    while (at > 0 && s_before (&row, &self->top [at - 1])) {
        self->top [at] = self->top [at - 1];
        at--;
    }
    self->top [at] = row;
}

size_t
an_report_doc_stores (an_report_doc_t *self)
{
    assert (self);
    return self->stores;
}

static cairo_status_t
s_write (void *closure, const unsigned char *data, unsigned int length)
{
    return tl_buf_append ((tl_buf_t *) closure, data, length) == 0
         ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static void
s_text (cairo_t *cr, double x, double y, double size, const char *text)
{
    cairo_set_font_size (cr, size);
    cairo_move_to (cr, x, y);
    cairo_show_text (cr, text);
}

//  The page: title, totals, chart, table.
static void
s_draw (an_report_doc_t *self, cairo_t *cr)
{
    char line [160];
    cairo_select_font_face (cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb (cr, 0, 0, 0);
    s_text (cr, S_MARGIN, 70, 20, "Store uptime report");
    snprintf (line, sizeof line, "Now (newest poll): %s    Stores: %zu", self->now, self->stores);
    s_text (cr, S_MARGIN, 95, 11, line);
    static const char *names [3] = { "Last hour (minutes)", "Last day (hours)",
                                     "Last week (hours)" };
    static const double units [3] = { 60e6, 3600e6, 3600e6 };
    for (int w = 0; w < 3; w++) {
        snprintf (line, sizeof line, "%-20s uptime %.2f   downtime %.2f", names [w],
                  (double) self->up [w] / units [w], (double) self->down [w] / units [w]);
        s_text (cr, S_MARGIN, 125 + 16 * w, 11, line);
    }
    s_text (cr, S_MARGIN, 200, 13, "Most downtime in the last week");
    //  The chart: one bar per top store, downtime (red) and uptime (green)
    //  of the week, scaled to the largest business week among them
    double chart_top = 215, chart_h = 200, chart_w = S_PAGE_W - 2 * S_MARGIN;
    int64_t scale = 1;
    for (size_t i = 0; i < self->ntop; i++) {
        int64_t total = self->top [i].figures.up_us [AN_WEEK] + self->top [i].figures.down_us [AN_WEEK];
        scale = total > scale ? total : scale;
    }
    double bar = self->ntop ? chart_w / (double) self->ntop : chart_w;
    for (size_t i = 0; i < self->ntop; i++) {
        double down = chart_h * (double) self->top [i].figures.down_us [AN_WEEK] / (double) scale;
        double up = chart_h * (double) self->top [i].figures.up_us [AN_WEEK] / (double) scale;
        double x = S_MARGIN + bar * (double) i + 2;
        cairo_set_source_rgb (cr, 0.8, 0.2, 0.2);
        cairo_rectangle (cr, x, chart_top + chart_h - down, bar - 4, down);
        cairo_fill (cr);
        cairo_set_source_rgb (cr, 0.3, 0.7, 0.3);
        cairo_rectangle (cr, x, chart_top + chart_h - down - up, bar - 4, up);
        cairo_fill (cr);
    }
    cairo_set_source_rgb (cr, 0, 0, 0);
    cairo_set_line_width (cr, 0.5);
    cairo_move_to (cr, S_MARGIN, chart_top + chart_h);
    cairo_line_to (cr, S_MARGIN + chart_w, chart_top + chart_h);
    cairo_stroke (cr);
    //  The table
    double y = chart_top + chart_h + 30;
    s_text (cr, S_MARGIN, y, 9, "store_id                 down week h  up week h  down day h  down hour min");
    for (size_t i = 0; i < self->ntop; i++) {
        const an_report_figures_t *f = &self->top [i].figures;
        snprintf (line, sizeof line, "%-24lld %11.2f %10.2f %11.2f %14.2f",
                  (long long) self->top [i].store_id, (double) f->down_us [AN_WEEK] / 3600e6,
                  (double) f->up_us [AN_WEEK] / 3600e6, (double) f->down_us [AN_DAY] / 3600e6,
                  (double) f->down_us [AN_HOUR] / 60e6);
        s_text (cr, S_MARGIN, y + 14 * (double) (i + 1), 9, line);
    }
}

int
an_report_doc_render (an_report_doc_t *self, const char *now, unsigned char **data_p,
                      size_t *size_p)
{
    assert (self && now && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    if (strlen (now) >= sizeof self->now)
        return TL_EINVAL;
    snprintf (self->now, sizeof self->now, "%s", now);
    tl_buf_t *out = tl_buf_new (AN_REPORT_MAX_CSV);
    if (!out)
        return TL_ENOMEM;
    cairo_surface_t *surface = cairo_pdf_surface_create_for_stream (s_write, out, S_PAGE_W,
                                                                     S_PAGE_H);
    cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_TITLE, "Store uptime report");
    cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_CREATE_DATE, self->now);
    cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_MOD_DATE, self->now);
    cairo_t *cr = cairo_create (surface);
    s_draw (self, cr);
    cairo_show_page (cr);
    cairo_destroy (cr);
    cairo_surface_finish (surface);
    int rc = cairo_surface_status (surface) == CAIRO_STATUS_SUCCESS ? 0 : TL_EIO;
    cairo_surface_destroy (surface);
    if (rc == 0) {
        *data_p = (unsigned char *) tl_buf_steal (out, size_p);
        rc = *data_p ? 0 : TL_ENOMEM;
    }
    tl_buf_destroy (&out);
    return rc;
}

void
an_report_doc_release_fonts (void)
{
    cairo_debug_reset_static_data ();
    void *program = dlopen (NULL, RTLD_NOW);
    if (program) {
        void (*fc_fini) (void) = NULL;
        *(void **) &fc_fini = dlsym (program, "FcFini");
        if (fc_fini)
            fc_fini ();
        dlclose (program);
    }
}

//  --------------------------------------------------------------------------

void
an_report_doc_test (bool verbose)
{
    printf (" * an_report_doc: ");
    (void) verbose;
    an_report_doc_t *doc = an_report_doc_new ();
    assert (doc);
    //  25 stores: store i is down i hours in the week; the top keeps the
    //  20 with most downtime, most first
    for (int i = 1; i <= 25; i++) {
        an_report_figures_t f = { { 0, 0, (168 - i) * 3600000000LL },
                                  { 0, 0, i * 3600000000LL } };
        an_report_doc_add (doc, 1000 + i, &f);
    }
    assert (an_report_doc_stores (doc) == 25);
    assert (doc->ntop == AN_REPORT_TOP);
    assert (doc->top [0].store_id == 1025 && doc->top [19].store_id == 1006);
    assert (doc->down [AN_WEEK] == 325 * 3600000000LL);
    unsigned char *pdf, *again;
    size_t size, size_again;
    assert (an_report_doc_render (doc, "2023-01-25T18:13:22Z", &pdf, &size) == 0);
    assert (size > 1000 && memcmp (pdf, "%PDF-", 5) == 0);
    assert (an_report_doc_render (doc, "2023-01-25T18:13:22Z", &again, &size_again) == 0);
    assert (size == size_again && memcmp (pdf, again, size) == 0);
    free (pdf);
    free (again);
    an_report_doc_destroy (&doc);
    an_report_doc_destroy (&doc);
    an_report_doc_release_fonts ();
    printf ("OK\n");
}
