//  trk_chart.h — one chart of a tracker's logs, drawn with cairo to PNG,
//  SVG, or onto any cairo context (a PDF page of the monthly report).
//  A line chart (numerical and duration trackers) plots (time, value)
//  points as a line with dots, dates along x and round values along y; a
//  bar chart (boolean, multiple choice, mood) shows labelled bars with
//  their values above them. A chart with nothing to show still draws its
//  axes and says "No data for this period": that is not an error.
//  Times are milliseconds since the epoch and dates are drawn in UTC: to
//  show a user's local dates, shift the times by their offset first.
//  All text is UTF-8, drawn in DejaVu Sans with cairo's toy text API, and
//  ellipsized where it does not fit. Limits: TRK_CHART_* in tl_limits.h.
#ifndef TRK_CHART_H_INCLUDED
#define TRK_CHART_H_INCLUDED

#include <stdbool.h>
#include "trk_limits.h"
#include <stddef.h>
#include <stdint.h>
#include <cairo.h>

#include "tl_buf.h"

typedef enum {
    TRK_CHART_LINE,         //  points over time
    TRK_CHART_BAR,          //  labelled bars
} trk_chart_kind_t;

typedef struct _trk_chart_t trk_chart_t;

//  Creates an empty chart of `kind`, TRK_CHART_DEFAULT_WIDTH × _HEIGHT
//  pixels, titled `title` (NULL for none; rules as trk_chart_set_title).
//  Returns NULL on allocation failure or when the title is refused.
trk_chart_t *trk_chart_new (trk_chart_kind_t kind, const char *title);

//  Destroys the chart and nulls the caller's reference. Safe on NULL.
void trk_chart_destroy (trk_chart_t **self_p);

//  Sets the title (NULL or "" for none). Returns 0, TL_EINVAL when it is
//  not valid UTF-8, or TL_ETOOBIG past TRK_CHART_MAX_TITLE characters.
int trk_chart_set_title (trk_chart_t *self, const char *title);

//  Sets the size of the PNG and SVG renderings, in pixels. Returns 0,
//  TL_EINVAL below TRK_CHART_MIN_WIDTH/HEIGHT, TL_ETOOBIG above
//  TRK_CHART_MAX_WIDTH/HEIGHT; the size is unchanged on failure.
int trk_chart_set_size (trk_chart_t *self, int width, int height);

//  Line charts: fixes the x axis to [from_ms, to_ms] (UTC), so that an
//  empty chart still shows its dates; points outside are not drawn. Without
//  it the axis spans the points. Returns 0, or TL_EINVAL unless
//  from_ms < to_ms, both within TRK_CHART_MIN/MAX_TIME_MS.
int trk_chart_set_range (trk_chart_t *self, int64_t from_ms, int64_t to_ms);

//  Sets the unit shown as the y axis title ("kg", "km"; NULL for none).
//  Returns 0, TL_EINVAL (not UTF-8) or TL_ETOOBIG (TRK_CHART_MAX_UNIT).
int trk_chart_set_unit (trk_chart_t *self, const char *unit);

//  When `duration`, values are seconds: the y ticks fall on round times
//  and every value is labelled "1h 30m", "45m", "30s".
void trk_chart_set_duration (trk_chart_t *self, bool duration);

//  Line charts: adds a point, in any order. Returns 0; TL_EINVAL for a NaN
//  or infinite value, a time outside TRK_CHART_MIN/MAX_TIME_MS, or a bar
//  chart; TL_ETOOBIG past TRK_CHART_MAX_POINTS; TL_ENOMEM.
int trk_chart_add_point (trk_chart_t *self, int64_t t_ms, double value);

//  Bar charts: adds a bar, left to right. `label` (NULL for none) is
//  UTF-8 of at most TRK_CHART_MAX_LABEL characters; `rgb` is 0xRRGGBB, or
//  0 for the default colour. Returns 0; TL_EINVAL for a bad label, a NaN
//  or infinite value, an rgb above 0xFFFFFF, or a line chart; TL_ETOOBIG
//  past TRK_CHART_MAX_BARS or for a long label; TL_ENOMEM.
int trk_chart_add_bar (trk_chart_t *self, const char *label, double value, uint32_t rgb);

//  Returns how many points or bars the chart holds.
size_t trk_chart_size (trk_chart_t *self);

//  Draws the chart into the rectangle (x, y, width, height) of `cr`, in
//  cr's user units, leaving cr's state as it was. Returns 0, TL_EINVAL for
//  an empty, non-finite or larger than TRK_CHART_MAX_WIDTH/HEIGHT
//  rectangle, TL_ENOMEM, or TL_EIO when cr is (or gets) in an error state.
int trk_chart_draw (trk_chart_t *self, cairo_t *cr,
                    double x, double y, double width, double height);

//  Renders the chart as a PNG image of its size. On success returns 0 and
//  the image at *data_p (malloc'd: the caller frees it), its size at
//  *size_p. Returns TL_ENOMEM, TL_ETOOBIG past TRK_CHART_MAX_OUTPUT, or
//  TL_EIO, leaving *data_p NULL.
int trk_chart_render_png (trk_chart_t *self, unsigned char **data_p, size_t *size_p);

//  Renders the chart as an SVG document of its size (an XML text, not
//  NUL-terminated), as trk_chart_render_png.
int trk_chart_render_svg (trk_chart_t *self, unsigned char **data_p, size_t *size_p);

//  --------------------------------------------------------------------------
//  Helpers for the tracker's drawing classes (trk_board, trk_doc), so that
//  they all draw text the same way.

//  Selects DejaVu Sans, bold or not, at `size` user units, on `cr`.
void trk_chart_font (cairo_t *cr, double size, bool bold);

//  Returns the length in bytes of the longest prefix of `text` (`size`
//  bytes of valid UTF-8) that ends on a character boundary and is at most
//  `width` wide in cr's current font (0 when not even one character fits).
size_t trk_chart_text_fit (cairo_t *cr, const char *text, size_t size, double width);

//  Shows `text` (valid UTF-8) on the baseline `y`, within `width` user
//  units from `x`: left-aligned when `align` is 0, centred at 0.5, right-
//  aligned at 1. Text too wide is cut on a character boundary and ends
//  with an ellipsis.
void trk_chart_text_show (cairo_t *cr, const char *text,
                          double x, double y, double width, double align);

//  Writes `surface` as PNG into memory, as trk_chart_render_png.
int trk_chart_surface_png (cairo_surface_t *surface, unsigned char **data_p, size_t *size_p);

//  Sets cairo's source colour to 0xRRGGBB.
void trk_chart_set_rgb (cairo_t *cr, uint32_t rgb);

//  "Jan".."Dec" for months 1..12, NULL otherwise. Static.
const char *trk_chart_month_name (int month);

//  A cairo write stream into memory: make one with a bounded buffer
//  ({ tl_buf_new (max), 0 }), hand trk_chart_sink_write and the sink to a
//  *_for_stream surface, finish the surface, then trk_chart_sink_end:
//  0 with the bytes in *data_p (the caller frees) and *size_p, or the first
//  write error (TL_ETOOBIG past the bound) or cairo's status as a code.
//  Either way the buffer is gone.
typedef struct {
    tl_buf_t *buf;
    int rc;                 //  the first append error
} trk_chart_sink_t;
cairo_status_t trk_chart_sink_write (void *closure, const unsigned char *data,
                                     unsigned int length);
int trk_chart_sink_end (trk_chart_sink_t *sink, cairo_status_t status,
                        unsigned char **data_p, size_t *size_p);

//  Frees what cairo and fontconfig keep for the life of the process (font
//  caches, fontconfig's configuration), so that LeakSanitizer reports
//  only real leaks. For self-tests and process exit: no cairo object may
//  be alive, and no other thread may be drawing. Drawing afterwards works
//  (the caches are rebuilt).
void trk_chart_release_fonts (void);

//  Self-test, run by ctest.
void trk_chart_test (bool verbose);

//  For self-tests (this class's and trk_board's): decodes a PNG, asserting
//  its signature and size (the caller destroys the surface), and reads the
//  0xRRGGBB colour of one pixel of an opaque image.
cairo_surface_t *trk_chart_test_decode (const unsigned char *png, size_t size,
                                        int width, int height);
uint32_t trk_chart_test_pixel (cairo_surface_t *image, double x, double y);

#endif
