//  trk_chart.c — one chart drawn with cairo (see trk_chart.h).
//  Every output comes from trk_chart_draw: the PNG and SVG renderings make
//  a surface of the chart's size and draw on it; a report draws on its PDF
//  page. Drawing first works out a frame (s_frame: the plot rectangle and
//  both axes), then draws the grid, the series and the text inside it.
//  Line charts with more points than pixel columns are decimated: each
//  column keeps its first, lowest, highest and last point, so that the
//  line looks the same at a fraction of the cost.
#define _GNU_SOURCE                 //  memmem
#include <assert.h>
#include <ctype.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cairo-svg.h>

#include "trk_chart.h"
#include "tl_buf.h"
#include "tl_error.h"
#include "tl_json.h"
#include "trk_limits.h"

#define S_FONT              "DejaVu Sans"
#define S_ELLIPSIS          "\xe2\x80\xa6"      //  U+2026
#define S_FIT_MAX           1020        //  bytes of text one line measures
#define S_TITLE_SIZE        15.0
#define S_LABEL_SIZE        11.0
#define S_VALUE_SIZE        10.0
#define S_MESSAGE_SIZE      13.0
#define S_MAX_TICKS         64
#define S_Y_TICKS           5           //  wanted on the y axis
#define S_HOUR_MS           3600000LL
#define S_DAY_MS            86400000LL
#define S_EMPTY_MESSAGE     "No data for this period"

#define S_RGB_BACKGROUND    0xffffff
#define S_RGB_TEXT          0x333333
#define S_RGB_MUTED         0x777777
#define S_RGB_AXIS          0x999999
#define S_RGB_GRID          0xe8e8e8
#define S_RGB_SERIES        0x2f6fb0

typedef struct {
    int64_t t;
    double value;
} s_point_t;

typedef struct {
    char *label;            //  NUL-terminated, "" for none
    double value;
    uint32_t rgb;           //  0 for the default colour
} s_bar_t;

struct _trk_chart_t {
    trk_chart_kind_t kind;
    char *title;            //  NULL for none
    char *unit;             //  NULL for none
    int width;
    int height;
    bool duration;
    bool ranged;            //  from_ms/to_ms set by the caller
    int64_t from_ms;
    int64_t to_ms;
    s_point_t *points;
    size_t npoints;
    size_t apoints;         //  allocated
    bool sorted;            //  points in time order
    s_bar_t bars [TRK_CHART_MAX_BARS];
    size_t nbars;
};

//  A value axis: ticks at lo, lo + step, ... hi.
typedef struct {
    double lo;
    double hi;
    double step;
    int decimals;           //  for labels, when not a duration
    bool duration;
} s_axis_t;

//  Where things go, worked out before anything is drawn.
typedef struct {
    double x, y, width, height;             //  the whole chart
    double plot_x, plot_y, plot_w, plot_h;  //  the plot area
    double title_y;                         //  baseline; 0 without a title
    s_axis_t axis;
    int64_t from_ms, to_ms;                 //  line charts: x span, or both 0
    size_t first, last;                     //  line charts: points in span
    bool empty;
} s_frame_t;

static const char *s_month_names [12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

const char *
trk_chart_month_name (int month)
{
    return month >= 1 && month <= 12 ? s_month_names [month - 1] : NULL;
}


//  --------------------------------------------------------------------------
//  Small helpers

//  Sets the source colour to 0xRRGGBB.

void
trk_chart_set_rgb (cairo_t *cr, uint32_t rgb)
{
    cairo_set_source_rgb (cr, ((rgb >> 16) & 0xff) / 255.0,
                              ((rgb >> 8) & 0xff) / 255.0, (rgb & 0xff) / 255.0);
}


//  Maps a cairo status to a TL_E* code.

static int
s_status_rc (cairo_status_t status)
{
    return status == CAIRO_STATUS_SUCCESS? 0
         : status == CAIRO_STATUS_NO_MEMORY? TL_ENOMEM: TL_EIO;
}


//  Checks user text: valid UTF-8 of at most `max_chars` characters.
//  Returns 0, TL_EINVAL or TL_ETOOBIG.

static int
s_check_text (const char *text, size_t max_chars)
{
    size_t size = strlen (text);
    if (size > max_chars * 4)
        return TL_ETOOBIG;
    if (!tl_json_utf8_valid (text, size))
        return TL_EINVAL;
    size_t chars = 0;
    for (size_t i = 0; i < size; i++)
        if (((unsigned char) text [i] & 0xc0) != 0x80)
            chars++;
    return chars > max_chars? TL_ETOOBIG: 0;
}


//  Replaces the string at *slot_p with a checked copy of `text` (NULL or
//  "" leaves NULL). Returns 0, TL_EINVAL, TL_ETOOBIG or TL_ENOMEM; on
//  failure *slot_p is unchanged.

static int
s_set_text (char **slot_p, const char *text, size_t max_chars)
{
    char *copy = NULL;
    if (text && *text) {
        int rc = s_check_text (text, max_chars);
        if (rc)
            return rc;
        copy = strdup (text);
        if (!copy)
            return TL_ENOMEM;
    }
    free (*slot_p);
    *slot_p = copy;
    return 0;
}


//  Division rounding towards minus infinity.

static int64_t
s_floor_div (int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0))? q - 1: q;
}


//  Days since 1970-01-01 of a proleptic Gregorian date, and back
//  (H. Hinnant's algorithms).

static int64_t
s_days_from_civil (int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0? year: year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month + (month > 2? -3: 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
s_civil_from_days (int64_t days, int64_t *year_p, int *month_p, int *day_p)
{
    days += 719468;
    int64_t era = (days >= 0? days: days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day_p = (int) (doy - (153 * mp + 2) / 5 + 1);
    *month_p = (int) (mp < 10? mp + 3: mp - 9);
    *year_p = yoe + era * 400 + (*month_p <= 2);
}


//  --------------------------------------------------------------------------
//  Numbers: nice ticks and their labels

//  Heckbert's nice number: 1, 2, 5 or 10 times a power of ten, near x
//  (rounded) or at least x.

static double
s_nice (double x, bool round)
{
    double exponent = floor (log10 (x));
    double fraction = x / pow (10, exponent);
    double nice;
    if (round)
        nice = fraction < 1.5? 1: fraction < 3? 2: fraction < 7? 5: 10;
    else
        nice = fraction <= 1? 1: fraction <= 2? 2: fraction <= 5? 5: 10;
    return nice * pow (10, exponent);
}


//  Round steps for durations, in seconds; beyond the last, whole weeks.
static const double s_duration_steps [] = {
    1, 2, 5, 10, 15, 30,                            //  seconds
    60, 120, 300, 600, 900, 1800,                   //  minutes
    3600, 7200, 10800, 21600, 43200,                //  hours
    86400, 172800, 604800                           //  days, a week
};

//  Works out an axis with about S_Y_TICKS round ticks covering [lo, hi].
//  `integral` (all values whole numbers) keeps the step at least 1.

static void
s_axis_init (s_axis_t *axis, double lo, double hi, bool duration, bool integral)
{
    //  Equal values (or too close to tell apart at their magnitude): a
    //  band around them.
    double magnitude = fmax (fabs (lo), fabs (hi));
    if (!(hi - lo > magnitude * 1e-9)) {
        double pad = magnitude * 0.1;
        if (pad == 0)
            pad = 1;
        lo -= lo == 0? 0: pad;
        hi += pad;
    }
    double span = hi - lo;
    double raw = span / (S_Y_TICKS - 1);
    double step = 0;
    if (duration) {
        size_t count = sizeof s_duration_steps / sizeof s_duration_steps [0];
        for (size_t i = 0; i < count && step == 0; i++)
            if (s_duration_steps [i] >= raw)
                step = s_duration_steps [i];
        if (step == 0)
            step = s_nice (raw / 604800, false) * 604800;
    }
    else
        step = s_nice (s_nice (span, false) / (S_Y_TICKS - 1), true);
    if ((integral || duration) && step < 1)
        step = 1;
    axis->step = step;
    axis->lo = floor (lo / step) * step;
    axis->hi = ceil (hi / step) * step;
    if (axis->hi <= axis->lo)
        axis->hi = axis->lo + step;
    axis->duration = duration;
    axis->decimals = step >= 1? 0: (int) ceil (-log10 (step) - 1e-9);
    if (axis->decimals > 10)
        axis->decimals = 10;
}


//  Returns how many ticks the axis has (at most S_MAX_TICKS).

static int
s_axis_ticks (const s_axis_t *axis)
{
    double count = floor ((axis->hi - axis->lo) / axis->step + 0.5) + 1;
    return count > S_MAX_TICKS? S_MAX_TICKS: count < 1? 1: (int) count;
}


//  Formats seconds the human way: the two largest units, "1h 30m", "45m",
//  "30s", "2d 4h", "0".

static void
s_format_duration (double seconds, char *buf, size_t size)
{
    const char *sign = seconds < 0? "-": "";
    double magnitude = fabs (seconds);
    if (magnitude > 0 && magnitude < 1) {
        snprintf (buf, size, "%s%.1fs", sign, magnitude);
        return;
    }
    long long total = llround (magnitude);
    if (total == 0) {
        snprintf (buf, size, "0");
        return;
    }
    long long parts [4] = { total / 86400, total % 86400 / 3600, total % 3600 / 60, total % 60 };
    const char *units [4] = { "d", "h", "m", "s" };
    int first = 0;
    while (parts [first] == 0)
        first++;
    if (first < 3 && parts [first + 1])
        snprintf (buf, size, "%s%lld%s %lld%s", sign, parts [first], units [first],
                  parts [first + 1], units [first + 1]);
    else
        snprintf (buf, size, "%s%lld%s", sign, parts [first], units [first]);
}


//  Formats a tick value of `axis`.

static void
s_format_tick (const s_axis_t *axis, double value, char *buf, size_t size)
{
    if (fabs (value) < axis->step * 1e-9)
        value = 0;          //  no "-0"
    if (axis->duration)
        s_format_duration (value, buf, size);
    else
        snprintf (buf, size, "%.*f", axis->decimals, value);
}


//  Formats a bar's value: whole numbers as such, others to two decimals
//  without trailing zeros.

static void
s_format_value (double value, bool duration, char *buf, size_t size)
{
    if (duration) {
        s_format_duration (value, buf, size);
        return;
    }
    if (value == floor (value)) {
        snprintf (buf, size, "%.0f", value);
        return;
    }
    snprintf (buf, size, "%.2f", value);
    char *end = buf + strlen (buf) - 1;
    while (end > buf && *end == '0')
        *end-- = 0;
    if (*end == '.')
        *end = 0;
}


//  --------------------------------------------------------------------------
//  Dates: ticks on the time axis

typedef enum { S_HOURS, S_DAYS, S_MONTHS, S_YEARS } s_unit_t;

static const struct {
    s_unit_t unit;
    int step;
} s_time_steps [] = {
    { S_HOURS, 1 }, { S_HOURS, 2 }, { S_HOURS, 3 }, { S_HOURS, 6 }, { S_HOURS, 12 },
    { S_DAYS, 1 }, { S_DAYS, 2 }, { S_DAYS, 7 }, { S_DAYS, 14 },
    { S_MONTHS, 1 }, { S_MONTHS, 2 }, { S_MONTHS, 3 }, { S_MONTHS, 6 },
    { S_YEARS, 1 }, { S_YEARS, 2 }, { S_YEARS, 5 }, { S_YEARS, 10 }, { S_YEARS, 20 },
    { S_YEARS, 50 }, { S_YEARS, 100 }, { S_YEARS, 200 }, { S_YEARS, 500 },
    { S_YEARS, 1000 }, { S_YEARS, 2000 }, { S_YEARS, 5000 }
};

//  Formats the label of a tick at `t_ms`: "14:00" (or the date at
//  midnight) for hours, "Nov 3" for days, "Nov 2026" for months, "2026".

static void
s_time_label (s_unit_t unit, int64_t t_ms, char *buf, size_t size)
{
    int64_t days = s_floor_div (t_ms, S_DAY_MS);
    int64_t year;
    int month, day;
    s_civil_from_days (days, &year, &month, &day);
    int64_t hour = (t_ms - days * S_DAY_MS) / S_HOUR_MS;
    if (unit == S_HOURS && hour != 0)
        snprintf (buf, size, "%02d:00", (int) hour);
    else
    if (unit == S_HOURS || unit == S_DAYS)
        snprintf (buf, size, "%s %d", s_month_names [month - 1], day);
    else
    if (unit == S_MONTHS)
        snprintf (buf, size, "%s %lld", s_month_names [month - 1], (long long) year);
    else
        snprintf (buf, size, "%lld", (long long) year);
}


//  Chooses the finest time step whose labels fit `width` over [from, to]
//  and writes its ticks to `ticks` (at most S_MAX_TICKS). Returns the
//  tick count; *unit_p says how to label them.

static int
s_time_ticks (cairo_t *cr, int64_t from, int64_t to, double width,
              int64_t *ticks, s_unit_t *unit_p)
{
    static const char *widest [] = { "May 30", "May 30", "May 2026", "2026" };
    static const double unit_ms [] = {
        (double) S_HOUR_MS, (double) S_DAY_MS, 30.44 * S_DAY_MS, 365.25 * S_DAY_MS
    };
    double span = (double) (to - from);
    size_t count = sizeof s_time_steps / sizeof s_time_steps [0];
    size_t choice = count - 1;
    for (size_t i = 0; i < count; i++) {
        cairo_text_extents_t extents;
        cairo_text_extents (cr, widest [s_time_steps [i].unit], &extents);
        double needed = span / (unit_ms [s_time_steps [i].unit] * s_time_steps [i].step) + 1;
        if (needed * (extents.x_advance + 14) <= width) {
            choice = i;
            break;
        }
    }
    s_unit_t unit = s_time_steps [choice].unit;
    int64_t step = s_time_steps [choice].step;
    *unit_p = unit;

    int found = 0;
    if (unit == S_HOURS || unit == S_DAYS) {
        //  Hours from midnight UTC; days of 2 or more from a Monday.
        int64_t step_ms = step * (unit == S_HOURS? S_HOUR_MS: S_DAY_MS);
        int64_t offset = unit == S_DAYS? 4 * S_DAY_MS: 0;      //  1970-01-05 was a Monday
        int64_t t = s_floor_div (from - offset, step_ms) * step_ms + offset;
        for (int i = 0; found < S_MAX_TICKS && t <= to && i < S_MAX_TICKS + 2; i++, t += step_ms)
            if (t >= from)
                ticks [found++] = t;
    }
    else {
        int64_t year;
        int month, day;
        s_civil_from_days (s_floor_div (from, S_DAY_MS), &year, &month, &day);
        //  Months counted from year 0, on multiples of the step.
        int64_t months_step = unit == S_MONTHS? step: step * 12;
        int64_t index = year * 12 + month - 1;
        index = s_floor_div (index, months_step) * months_step;
        for (int i = 0; found < S_MAX_TICKS && i < S_MAX_TICKS + 2; i++, index += months_step) {
            int64_t t = s_days_from_civil (s_floor_div (index, 12),
                                           (int) (index - s_floor_div (index, 12) * 12) + 1,
                                           1) * S_DAY_MS;
            if (t > to)
                break;
            if (t >= from)
                ticks [found++] = t;
        }
    }
    return found;
}


//  --------------------------------------------------------------------------
//  Text helpers, shared with trk_board and trk_doc

void
trk_chart_font (cairo_t *cr, double size, bool bold)
{
    assert (cr);
    cairo_select_font_face (cr, S_FONT, CAIRO_FONT_SLANT_NORMAL,
                            bold? CAIRO_FONT_WEIGHT_BOLD: CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size (cr, size);
}


//  Returns the start of the character holding byte `pos` of `text`.

static size_t
s_utf8_floor (const char *text, size_t size, size_t pos)
{
    if (pos >= size)
        return size;
    while (pos > 0 && ((unsigned char) text [pos] & 0xc0) == 0x80)
        pos--;
    return pos;
}


//  Returns the start of the character after the one at `pos`.

static size_t
s_utf8_next (const char *text, size_t size, size_t pos)
{
    pos++;
    while (pos < size && ((unsigned char) text [pos] & 0xc0) == 0x80)
        pos++;
    return pos < size? pos: size;
}


//  Returns the advance of `size` bytes of `text`; `buf` holds S_FIT_MAX+1.

static double
s_advance (cairo_t *cr, const char *text, size_t size, char *buf)
{
    memcpy (buf, text, size);
    buf [size] = 0;
    cairo_text_extents_t extents;
    cairo_text_extents (cr, buf, &extents);
    return extents.x_advance;
}


//  Returns the longest prefix of text that fits in `width`.

size_t
trk_chart_text_fit (cairo_t *cr, const char *text, size_t size, double width)
{
    assert (cr);
    assert (text);
    char buf [S_FIT_MAX + 1];
    //  No line we draw is S_FIT_MAX bytes wide: measure at most that.
    size_t limit = s_utf8_floor (text, size, size < S_FIT_MAX? size: S_FIT_MAX);
    if (s_advance (cr, text, limit, buf) <= width)
        return limit;
    //  Binary search over character boundaries: `good` fits, `bad` not.
    size_t good = 0, bad = limit;
    while (true) {
        size_t mid = s_utf8_floor (text, size, good + (bad - good) / 2);
        if (mid <= good)
            mid = s_utf8_next (text, size, good);
        if (mid >= bad)
            break;
        if (s_advance (cr, text, mid, buf) <= width)
            good = mid;
        else
            bad = mid;
    }
    return good;
}


//  Shows text within `width`, aligned, cut with an ellipsis.

void
trk_chart_text_show (cairo_t *cr, const char *text,
                     double x, double y, double width, double align)
{
    assert (cr);
    assert (text);
    char buf [S_FIT_MAX + sizeof S_ELLIPSIS];
    size_t size = strlen (text);
    const char *shown = text;
    cairo_text_extents_t extents;
    bool fits = false;
    if (size <= S_FIT_MAX) {
        cairo_text_extents (cr, text, &extents);
        fits = extents.x_advance <= width;
    }
    if (!fits) {
        cairo_text_extents (cr, S_ELLIPSIS, &extents);
        if (extents.x_advance > width)
            return;         //  not even the ellipsis fits
        size_t fit = trk_chart_text_fit (cr, text, size, width - extents.x_advance);
        while (fit > 0 && text [fit - 1] == ' ')
            fit--;
        memcpy (buf, text, fit);
        memcpy (buf + fit, S_ELLIPSIS, sizeof S_ELLIPSIS);
        shown = buf;
    }
    cairo_text_extents (cr, shown, &extents);
    cairo_move_to (cr, x + (width - extents.x_advance) * align, y);
    cairo_show_text (cr, shown);
}


//  Output into memory: a cairo write function over a capped tl_buf.

//  Appends what cairo writes; fails past the buffer's cap.

cairo_status_t
trk_chart_sink_write (void *closure, const unsigned char *data, unsigned int length)
{
    trk_chart_sink_t *sink = (trk_chart_sink_t *) closure;
    int rc = tl_buf_append (sink->buf, data, length);
    if (rc) {
        if (!sink->rc)
            sink->rc = rc;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}


//  Ends a write: on success hands the content to *data_p. Returns the
//  sink's error, else the status's, else 0; destroys the sink's buffer.

int
trk_chart_sink_end (trk_chart_sink_t *sink, cairo_status_t status, unsigned char **data_p,
                    size_t *size_p)
{
    int rc = sink->rc? sink->rc: s_status_rc (status);
    if (rc == 0) {
        *data_p = (unsigned char *) tl_buf_steal (sink->buf, size_p);
        if (!*data_p)
            rc = TL_ENOMEM;
    }
    tl_buf_destroy (&sink->buf);
    if (rc)
        *size_p = 0;
    return rc;
}


//  Writes a surface as PNG into memory.

int
trk_chart_surface_png (cairo_surface_t *surface, unsigned char **data_p, size_t *size_p)
{
    assert (surface);
    assert (data_p);
    assert (size_p);
    *data_p = NULL;
    *size_p = 0;
    trk_chart_sink_t sink = { tl_buf_new (TRK_CHART_MAX_OUTPUT), 0 };
    if (!sink.buf)
        return TL_ENOMEM;
    cairo_status_t status = cairo_surface_write_to_png_stream (surface, trk_chart_sink_write, &sink);
    return trk_chart_sink_end (&sink, status, data_p, size_p);
}


//  --------------------------------------------------------------------------
//  Frees the font caches of cairo and fontconfig. FcFini is looked up at
//  run time: fontconfig is cairo's dependency, not ours to link.

void
trk_chart_release_fonts (void)
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
//  Creates a chart.

trk_chart_t *
trk_chart_new (trk_chart_kind_t kind, const char *title)
{
    assert (kind == TRK_CHART_LINE || kind == TRK_CHART_BAR);
    trk_chart_t *self = (trk_chart_t *) calloc (1, sizeof (trk_chart_t));
    if (!self)
        return NULL;
    self->kind = kind;
    self->width = TRK_CHART_DEFAULT_WIDTH;
    self->height = TRK_CHART_DEFAULT_HEIGHT;
    self->sorted = true;
    if (s_set_text (&self->title, title, TRK_CHART_MAX_TITLE))
        trk_chart_destroy (&self);
    return self;
}


//  --------------------------------------------------------------------------
//  Destroys a chart.

void
trk_chart_destroy (trk_chart_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        trk_chart_t *self = *self_p;
        for (size_t i = 0; i < self->nbars; i++)
            free (self->bars [i].label);
        free (self->points);
        free (self->title);
        free (self->unit);
        free (self);
        *self_p = NULL;
    }
}


//  Sets or clears the title.

int
trk_chart_set_title (trk_chart_t *self, const char *title)
{
    assert (self);
    return s_set_text (&self->title, title, TRK_CHART_MAX_TITLE);
}


//  Sets the size of the PNG and SVG renderings.

int
trk_chart_set_size (trk_chart_t *self, int width, int height)
{
    assert (self);
    if (width < TRK_CHART_MIN_WIDTH || height < TRK_CHART_MIN_HEIGHT)
        return TL_EINVAL;
    if (width > TRK_CHART_MAX_WIDTH || height > TRK_CHART_MAX_HEIGHT)
        return TL_ETOOBIG;
    self->width = width;
    self->height = height;
    return 0;
}


//  Fixes the x axis of a line chart.

int
trk_chart_set_range (trk_chart_t *self, int64_t from_ms, int64_t to_ms)
{
    assert (self);
    if (from_ms >= to_ms || from_ms < TRK_CHART_MIN_TIME_MS || to_ms > TRK_CHART_MAX_TIME_MS)
        return TL_EINVAL;
    self->ranged = true;
    self->from_ms = from_ms;
    self->to_ms = to_ms;
    return 0;
}


//  Sets or clears the unit of the y axis.

int
trk_chart_set_unit (trk_chart_t *self, const char *unit)
{
    assert (self);
    return s_set_text (&self->unit, unit, TRK_CHART_MAX_UNIT);
}


//  Makes values seconds, labelled as durations.

void
trk_chart_set_duration (trk_chart_t *self, bool duration)
{
    assert (self);
    self->duration = duration;
}


//  --------------------------------------------------------------------------
//  Adds a point to a line chart.

int
trk_chart_add_point (trk_chart_t *self, int64_t t_ms, double value)
{
    assert (self);
    if (self->kind != TRK_CHART_LINE || !isfinite (value) || fabs (value) > TRK_CHART_MAX_VALUE
    ||  t_ms < TRK_CHART_MIN_TIME_MS || t_ms > TRK_CHART_MAX_TIME_MS)
        return TL_EINVAL;
    if (self->npoints >= TRK_CHART_MAX_POINTS)
        return TL_ETOOBIG;
    if (self->npoints == self->apoints) {
        size_t alloc = self->apoints? self->apoints * 2: 64;
        if (alloc > TRK_CHART_MAX_POINTS)
            alloc = TRK_CHART_MAX_POINTS;
        s_point_t *points = (s_point_t *) realloc (self->points, alloc * sizeof (s_point_t));
        if (!points)
            return TL_ENOMEM;
        self->points = points;
        self->apoints = alloc;
    }
    if (self->npoints && t_ms < self->points [self->npoints - 1].t)
        self->sorted = false;
    self->points [self->npoints++] = (s_point_t) { t_ms, value };
    return 0;
}


//  --------------------------------------------------------------------------
//  Adds a bar to a bar chart.

int
trk_chart_add_bar (trk_chart_t *self, const char *label, double value, uint32_t rgb)
{
    assert (self);
    if (self->kind != TRK_CHART_BAR || !isfinite (value) || fabs (value) > TRK_CHART_MAX_VALUE
    ||  rgb > 0xffffff)
        return TL_EINVAL;
    if (self->nbars >= TRK_CHART_MAX_BARS)
        return TL_ETOOBIG;
    int rc = s_check_text (label? label: "", TRK_CHART_MAX_LABEL);
    if (rc)
        return rc;
    char *copy = strdup (label? label: "");
    if (!copy)
        return TL_ENOMEM;
    self->bars [self->nbars++] = (s_bar_t) { copy, value, rgb };
    return 0;
}


//  Returns the number of points or bars.

size_t
trk_chart_size (trk_chart_t *self)
{
    assert (self);
    return self->kind == TRK_CHART_LINE? self->npoints: self->nbars;
}


//  --------------------------------------------------------------------------
//  Drawing

static int
s_point_compare (const void *a, const void *b)
{
    int64_t ta = ((const s_point_t *) a)->t;
    int64_t tb = ((const s_point_t *) b)->t;
    return ta < tb? -1: ta > tb;
}


//  Returns the y coordinate of `value` in the frame.

static double
s_value_y (const s_frame_t *frame, double value)
{
    const s_axis_t *axis = &frame->axis;
    return frame->plot_y + frame->plot_h
         - (value - axis->lo) / (axis->hi - axis->lo) * frame->plot_h;
}


//  Returns the x coordinate of time `t` in a line chart's frame.

static double
s_time_x (const s_frame_t *frame, int64_t t)
{
    return frame->plot_x
         + (double) (t - frame->from_ms) / (double) (frame->to_ms - frame->from_ms) * frame->plot_w;
}


//  Works out the frame of the chart drawn in (x, y, width, height): the x
//  span and the points in it, the value axis, the margins. Sorts the
//  points. Leaves the label font selected.

static void
s_frame (trk_chart_t *self, cairo_t *cr, double x, double y, double width, double height,
         s_frame_t *frame)
{
    memset (frame, 0, sizeof (s_frame_t));
    frame->x = x;
    frame->y = y;
    frame->width = width;
    frame->height = height;

    //  The data: its span and its value range.
    double lo = 0, hi = 0;
    bool integral = true;
    if (self->kind == TRK_CHART_LINE) {
        if (!self->sorted) {
            qsort (self->points, self->npoints, sizeof (s_point_t), s_point_compare);
            self->sorted = true;
        }
        if (self->ranged) {
            frame->from_ms = self->from_ms;
            frame->to_ms = self->to_ms;
        }
        else
        if (self->npoints) {
            frame->from_ms = self->points [0].t;
            frame->to_ms = self->points [self->npoints - 1].t;
            if (frame->to_ms - frame->from_ms < S_DAY_MS) {
                //  One instant, or a few hours: show the whole day(s).
                frame->from_ms = s_floor_div (frame->from_ms, S_DAY_MS) * S_DAY_MS;
                frame->to_ms = (s_floor_div (frame->to_ms, S_DAY_MS) + 1) * S_DAY_MS;
            }
        }
        size_t first = 0, last = self->npoints;
        while (first < last && self->points [first].t < frame->from_ms)
            first++;
        while (last > first && self->points [last - 1].t > frame->to_ms)
            last--;
        frame->first = first;
        frame->last = last;
        for (size_t i = first; i < last; i++) {
            double value = self->points [i].value;
            if (i == first || value < lo)
                lo = value;
            if (i == first || value > hi)
                hi = value;
            if (value != floor (value))
                integral = false;
        }
        frame->empty = first == last;
        if (self->duration && lo > 0)
            lo = 0;
    }
    else {
        frame->empty = true;
        for (size_t i = 0; i < self->nbars; i++) {
            double value = self->bars [i].value;
            lo = value < lo? value: lo;
            hi = value > hi? value: hi;
            if (value != floor (value))
                integral = false;
            if (value != 0)
                frame->empty = false;
        }
    }
    s_axis_init (&frame->axis, lo, hi, self->duration, integral);

    //  The margins: the title on top, tick labels left and below.
    double top = 12;
    if (self->title) {
        frame->title_y = y + 24;
        top = 38;
    }
    trk_chart_font (cr, S_LABEL_SIZE, false);
    double label_width = 0;
    if (!frame->empty) {
        int ticks = s_axis_ticks (&frame->axis);
        for (int i = 0; i < ticks; i++) {
            char label [64];
            cairo_text_extents_t extents;
            s_format_tick (&frame->axis, frame->axis.lo + i * frame->axis.step,
                           label, sizeof label);
            cairo_text_extents (cr, label, &extents);
            if (extents.x_advance > label_width)
                label_width = extents.x_advance;
        }
    }
    double left = 10 + (self->unit? 18: 0) + label_width + 8;
    if (left > width * 0.4)
        left = width * 0.4;
    double bottom = 30;
    double right = 18;
    frame->plot_x = x + left;
    frame->plot_y = y + top;
    frame->plot_w = width - left - right;
    frame->plot_h = height - top - bottom;
}


//  Draws the grid, the axes and their labels.

static void
s_draw_axes (trk_chart_t *self, cairo_t *cr, const s_frame_t *frame)
{
    cairo_set_line_width (cr, 1);
    double bottom = frame->plot_y + frame->plot_h;
    if (!frame->empty) {
        int ticks = s_axis_ticks (&frame->axis);
        for (int i = 0; i < ticks; i++) {
            double value = frame->axis.lo + i * frame->axis.step;
            double y = floor (s_value_y (frame, value)) + 0.5;
            if (i > 0) {
                trk_chart_set_rgb (cr, S_RGB_GRID);
                cairo_move_to (cr, frame->plot_x, y);
                cairo_line_to (cr, frame->plot_x + frame->plot_w, y);
                cairo_stroke (cr);
            }
            char label [64];
            s_format_tick (&frame->axis, value, label, sizeof label);
            trk_chart_set_rgb (cr, S_RGB_MUTED);
            trk_chart_text_show (cr, label, frame->x + 4, y + 4,
                                 frame->plot_x - 6 - (frame->x + 4), 1);
        }
    }
    //  The axes themselves, and the zero line when values go below it.
    trk_chart_set_rgb (cr, S_RGB_AXIS);
    double left = floor (frame->plot_x) + 0.5;
    cairo_move_to (cr, left, frame->plot_y);
    cairo_line_to (cr, left, floor (bottom) + 0.5);
    cairo_line_to (cr, frame->plot_x + frame->plot_w, floor (bottom) + 0.5);
    cairo_stroke (cr);
    if (!frame->empty && frame->axis.lo < 0 && frame->axis.hi > 0) {
        double zero = floor (s_value_y (frame, 0)) + 0.5;
        cairo_move_to (cr, frame->plot_x, zero);
        cairo_line_to (cr, frame->plot_x + frame->plot_w, zero);
        cairo_stroke (cr);
    }
    //  The unit, along the y axis.
    if (self->unit) {
        cairo_save (cr);
        cairo_translate (cr, frame->x + 18, frame->plot_y + frame->plot_h / 2);
        cairo_rotate (cr, -M_PI / 2);
        trk_chart_set_rgb (cr, S_RGB_TEXT);
        trk_chart_text_show (cr, self->unit, -frame->plot_h / 2, 0, frame->plot_h, 0.5);
        cairo_restore (cr);
    }
    //  Dates along x, each label clear of the one before.
    if (self->kind == TRK_CHART_LINE && frame->to_ms > frame->from_ms) {
        int64_t ticks [S_MAX_TICKS];
        s_unit_t unit;
        int count = s_time_ticks (cr, frame->from_ms, frame->to_ms, frame->plot_w, ticks, &unit);
        double clear = frame->x;
        for (int i = 0; i < count; i++) {
            double x = floor (s_time_x (frame, ticks [i])) + 0.5;
            trk_chart_set_rgb (cr, S_RGB_AXIS);
            cairo_move_to (cr, x, bottom);
            cairo_line_to (cr, x, bottom + 4);
            cairo_stroke (cr);
            char label [32];
            cairo_text_extents_t extents;
            s_time_label (unit, ticks [i], label, sizeof label);
            cairo_text_extents (cr, label, &extents);
            double start = x - extents.x_advance / 2;
            if (start < clear || start + extents.x_advance > frame->x + frame->width)
                continue;
            trk_chart_set_rgb (cr, S_RGB_MUTED);
            cairo_move_to (cr, start, bottom + 17);
            cairo_show_text (cr, label);
            clear = start + extents.x_advance + 8;
        }
    }
}


//  Draws a line chart's points: a line, and dots when they are sparse
//  enough to be seen; decimated per pixel column when they are many.
//  Returns 0 or TL_ENOMEM.

static int
s_draw_line (trk_chart_t *self, cairo_t *cr, const s_frame_t *frame)
{
    size_t count = frame->last - frame->first;
    const s_point_t *points = self->points + frame->first;
    size_t columns = (size_t) ceil (frame->plot_w);
    if (columns < 1)
        columns = 1;
    trk_chart_set_rgb (cr, S_RGB_SERIES);
    cairo_set_line_width (cr, 2);
    cairo_set_line_join (cr, CAIRO_LINE_JOIN_ROUND);
    if (count > 2 * columns) {
        //  Per column: first, lowest, highest, last, in time order.
        typedef struct { size_t first, low, high, last; bool used; } s_column_t;
        s_column_t *column = (s_column_t *) calloc (columns, sizeof (s_column_t));
        if (!column)
            return TL_ENOMEM;
        double span = (double) (frame->to_ms - frame->from_ms);
        for (size_t i = 0; i < count; i++) {
            size_t c = (size_t) ((double) (points [i].t - frame->from_ms) / span * (double) columns);
            if (c >= columns)
                c = columns - 1;
            s_column_t *col = &column [c];
            if (!col->used)
                *col = (s_column_t) { i, i, i, i, true };
            if (points [i].value < points [col->low].value)
                col->low = i;
            if (points [i].value > points [col->high].value)
                col->high = i;
            col->last = i;
        }
        bool started = false;
        for (size_t c = 0; c < columns; c++) {
            if (!column [c].used)
                continue;
            double x = frame->plot_x + ((double) c + 0.5) * frame->plot_w / (double) columns;
            size_t order [4] = { column [c].first, column [c].low, column [c].high, column [c].last };
            if (order [1] > order [2]) {
                order [1] = column [c].high;
                order [2] = column [c].low;
            }
            for (int k = 0; k < 4; k++) {
                double y = s_value_y (frame, points [order [k]].value);
                if (started)
                    cairo_line_to (cr, x, y);
                else
                    cairo_move_to (cr, x, y);
                started = true;
            }
        }
        free (column);
        cairo_stroke (cr);
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        double x = s_time_x (frame, points [i].t);
        double y = s_value_y (frame, points [i].value);
        if (i)
            cairo_line_to (cr, x, y);
        else
            cairo_move_to (cr, x, y);
    }
    cairo_stroke (cr);
    if ((double) count <= frame->plot_w / 6)
        for (size_t i = 0; i < count; i++) {
            cairo_new_sub_path (cr);
            cairo_arc (cr, s_time_x (frame, points [i].t),
                       s_value_y (frame, points [i].value), 3, 0, 2 * M_PI);
            cairo_fill (cr);
        }
    return 0;
}


//  Returns the rectangle of bar `index` in the frame.

static void
s_bar_rect (trk_chart_t *self, const s_frame_t *frame, size_t index,
            double *x_p, double *y_p, double *width_p, double *height_p)
{
    double slot = frame->plot_w / (double) self->nbars;
    double width = slot * 0.7 < 80? slot * 0.7: 80;
    double zero = s_value_y (frame, frame->axis.lo > 0? frame->axis.lo: 0);
    double top = s_value_y (frame, self->bars [index].value);
    *x_p = frame->plot_x + slot * ((double) index + 0.5) - width / 2;
    *width_p = width;
    *y_p = top < zero? top: zero;
    *height_p = fabs (zero - top);
}


//  Draws a bar chart's bars, their values above and labels below.

static void
s_draw_bars (trk_chart_t *self, cairo_t *cr, const s_frame_t *frame)
{
    double slot = frame->plot_w / (double) self->nbars;
    double bottom = frame->plot_y + frame->plot_h;
    for (size_t i = 0; i < self->nbars; i++) {
        const s_bar_t *bar = &self->bars [i];
        double x, y, width, height;
        s_bar_rect (self, frame, i, &x, &y, &width, &height);
        trk_chart_set_rgb (cr, bar->rgb? bar->rgb: S_RGB_SERIES);
        cairo_rectangle (cr, x, y, width, height);
        cairo_fill (cr);
        double centre = x + width / 2;
        if (!frame->empty) {
            char value [64];
            cairo_text_extents_t extents;
            s_format_value (bar->value, self->duration, value, sizeof value);
            trk_chart_font (cr, S_VALUE_SIZE, false);
            cairo_text_extents (cr, value, &extents);
            if (extents.x_advance <= slot - 2) {
                trk_chart_set_rgb (cr, S_RGB_TEXT);
                cairo_move_to (cr, centre - extents.x_advance / 2,
                               bar->value < 0? y + height + 12: y - 4);
                cairo_show_text (cr, value);
            }
        }
        if (*bar->label && slot > 12) {
            trk_chart_font (cr, S_LABEL_SIZE, false);
            trk_chart_set_rgb (cr, S_RGB_MUTED);
            trk_chart_text_show (cr, bar->label, centre - (slot - 4) / 2, bottom + 17,
                                 slot - 4, 0.5);
        }
    }
    trk_chart_font (cr, S_LABEL_SIZE, false);
}


//  --------------------------------------------------------------------------
//  Draws the chart onto a cairo context.

int
trk_chart_draw (trk_chart_t *self, cairo_t *cr,
                double x, double y, double width, double height)
{
    assert (self);
    assert (cr);
    if (!isfinite (x) || !isfinite (y) || !isfinite (width) || !isfinite (height)
    ||  width <= 0 || height <= 0)
        return TL_EINVAL;
    if (width > TRK_CHART_MAX_WIDTH || height > TRK_CHART_MAX_HEIGHT)
        return TL_EINVAL;
    if (cairo_status (cr) != CAIRO_STATUS_SUCCESS)
        return TL_EIO;

    cairo_save (cr);
    cairo_rectangle (cr, x, y, width, height);
    cairo_clip (cr);
    trk_chart_set_rgb (cr, S_RGB_BACKGROUND);
    cairo_paint (cr);

    s_frame_t frame;
    s_frame (self, cr, x, y, width, height, &frame);
    int rc = 0;
    if (self->title) {
        trk_chart_font (cr, S_TITLE_SIZE, true);
        trk_chart_set_rgb (cr, S_RGB_TEXT);
        trk_chart_text_show (cr, self->title, x + 10, frame.title_y, width - 20, 0.5);
        trk_chart_font (cr, S_LABEL_SIZE, false);
    }
    if (frame.plot_w >= 1 && frame.plot_h >= 1) {
        s_draw_axes (self, cr, &frame);
        cairo_save (cr);
        cairo_rectangle (cr, frame.plot_x - 4, frame.plot_y - 16,
                         frame.plot_w + 8, frame.plot_h + 40);
        cairo_clip (cr);
        if (self->kind == TRK_CHART_LINE && !frame.empty)
            rc = s_draw_line (self, cr, &frame);
        else
        if (self->kind == TRK_CHART_BAR && self->nbars)
            s_draw_bars (self, cr, &frame);
        cairo_restore (cr);
        if (frame.empty) {
            trk_chart_font (cr, S_MESSAGE_SIZE, false);
            trk_chart_set_rgb (cr, S_RGB_MUTED);
            trk_chart_text_show (cr, S_EMPTY_MESSAGE, frame.plot_x,
                                 frame.plot_y + frame.plot_h / 2 + 5, frame.plot_w, 0.5);
        }
    }
    cairo_restore (cr);
    if (rc == 0)
        rc = s_status_rc (cairo_status (cr));
    return rc;
}


//  --------------------------------------------------------------------------
//  Renders the chart as PNG.

int
trk_chart_render_png (trk_chart_t *self, unsigned char **data_p, size_t *size_p)
{
    assert (self);
    assert (data_p);
    assert (size_p);
    *data_p = NULL;
    *size_p = 0;
    cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24,
                                                           self->width, self->height);
    int rc = s_status_rc (cairo_surface_status (surface));
    if (rc == 0) {
        cairo_t *cr = cairo_create (surface);
        rc = trk_chart_draw (self, cr, 0, 0, self->width, self->height);
        cairo_destroy (cr);
    }
    if (rc == 0)
        rc = trk_chart_surface_png (surface, data_p, size_p);
    cairo_surface_destroy (surface);
    return rc;
}


//  --------------------------------------------------------------------------
//  Renders the chart as SVG.

//  cairo numbers the surfaces of a process with one counter, so the same
//  chart drawn twice reads <g id="surface1"> and then <g id="surface6">:
//  renumbers every "surface<N>" of a document by order of appearance, so
//  that the same chart always gives the same bytes (and the same ETag).
//  Takes and replaces *data_p. Returns 0 or TL_ENOMEM.
static int
s_svg_stable_ids (unsigned char **data_p, size_t *size_p)
{
    static const char word [] = "surface";
    const size_t word_size = sizeof word - 1;
    unsigned char *in = *data_p;
    size_t size = *size_p;
    tl_buf_t *out = tl_buf_new (size + 64 * 16);
    if (!out)
        return TL_ENOMEM;
    long seen [64];
    int nseen = 0, rc = 0;
    size_t i = 0;
    while (rc == 0 && i < size) {
        //  Copy up to the next "surface<digit>", then renumber it
        const unsigned char *hit = (const unsigned char *) memmem (in + i, size - i, word, word_size);
        while (hit && (size_t) (hit - in) + word_size < size && !isdigit (hit [word_size]))
            hit = (const unsigned char *) memmem (hit + 1, size - (size_t) (hit + 1 - in),
                                                   word, word_size);
        size_t at = hit && (size_t) (hit - in) + word_size < size ? (size_t) (hit - in) : size;
        rc = tl_buf_append (out, in + i, at - i);
        if (rc || at == size)
            break;
        size_t j = at + word_size;
        long number = 0;
        while (j < size && isdigit (in [j]) && number < 100000000)
            number = number * 10 + (in [j++] - '0');
        int index = 0;
        while (index < nseen && seen [index] != number)
            index++;
        if (index == nseen && nseen < 64)
            seen [nseen++] = number;
        char text [32];
        int len = snprintf (text, sizeof text, "%s%d", word, index + 1);
        rc = tl_buf_append (out, text, (size_t) len);
        i = j;
    }
    if (rc) {
        tl_buf_destroy (&out);
        return rc;
    }
    size_t new_size = 0;
    unsigned char *copy = (unsigned char *) tl_buf_steal (out, &new_size);
    tl_buf_destroy (&out);
    if (!copy)
        return TL_ENOMEM;
    free (*data_p);
    *data_p = copy;
    *size_p = new_size;
    return 0;
}


int
trk_chart_render_svg (trk_chart_t *self, unsigned char **data_p, size_t *size_p)
{
    assert (self);
    assert (data_p);
    assert (size_p);
    *data_p = NULL;
    *size_p = 0;
    trk_chart_sink_t sink = { tl_buf_new (TRK_CHART_MAX_OUTPUT), 0 };
    if (!sink.buf)
        return TL_ENOMEM;
    cairo_surface_t *surface = cairo_svg_surface_create_for_stream (
        trk_chart_sink_write, &sink, self->width, self->height);
#if CAIRO_VERSION >= CAIRO_VERSION_ENCODE (1, 16, 0)
    cairo_svg_surface_set_document_unit (surface, CAIRO_SVG_UNIT_PX);
#endif
    int rc = s_status_rc (cairo_surface_status (surface));
    if (rc == 0) {
        cairo_t *cr = cairo_create (surface);
        rc = trk_chart_draw (self, cr, 0, 0, self->width, self->height);
        cairo_destroy (cr);
    }
    cairo_surface_finish (surface);
    cairo_status_t status = cairo_surface_status (surface);
    cairo_surface_destroy (surface);
    if (rc) {
        tl_buf_destroy (&sink.buf);
        return rc;
    }
    rc = trk_chart_sink_end (&sink, status, data_p, size_p);
    return rc ? rc : s_svg_stable_ids (data_p, size_p);
}


//  --------------------------------------------------------------------------
//  Self-test

//  Reads a PNG from memory for cairo_image_surface_create_from_png_stream.

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
} s_source_t;

//  Reads the next `length` bytes of the PNG in memory.

static cairo_status_t
s_source_read (void *closure, unsigned char *data, unsigned int length)
{
    s_source_t *source = (s_source_t *) closure;
    if (length > source->size - source->offset)
        return CAIRO_STATUS_READ_ERROR;
    memcpy (data, source->data + source->offset, length);
    source->offset += length;
    return CAIRO_STATUS_SUCCESS;
}

//  Decodes a PNG, checking its signature and size.

cairo_surface_t *
trk_chart_test_decode (const unsigned char *png, size_t size, int width, int height)
{
    assert (size > 8 && memcmp (png, "\x89PNG\r\n\x1a\n", 8) == 0);
    s_source_t source = { png, size, 0 };
    cairo_surface_t *image = cairo_image_surface_create_from_png_stream (s_source_read, &source);
    assert (cairo_surface_status (image) == CAIRO_STATUS_SUCCESS);
    assert (cairo_image_surface_get_width (image) == width);
    assert (cairo_image_surface_get_height (image) == height);
    return image;
}

//  Returns the 0xRRGGBB colour of a pixel of an opaque image.

uint32_t
trk_chart_test_pixel (cairo_surface_t *image, double x, double y)
{
    cairo_surface_flush (image);
    const unsigned char *data = cairo_image_surface_get_data (image);
    int stride = cairo_image_surface_get_stride (image);
    assert ((int) x >= 0 && (int) x < cairo_image_surface_get_width (image));
    assert ((int) y >= 0 && (int) y < cairo_image_surface_get_height (image));
    uint32_t pixel;
    memcpy (&pixel, data + (int) y * stride + (int) x * 4, 4);
    return pixel & 0xffffff;
}

//  Counts the pixels of colour `rgb` in a rectangle of an image.

static size_t
s_test_count (cairo_surface_t *image, int x, int y, int width, int height, uint32_t rgb)
{
    size_t count = 0;
    for (int row = y; row < y + height; row++)
        for (int col = x; col < x + width; col++)
            if (trk_chart_test_pixel (image, col, row) == rgb)
                count++;
    return count;
}

//  Counts the <path elements an SVG draws (after its definitions).

static size_t
s_test_paths (const unsigned char *svg, size_t size)
{
    char *text = strndup ((const char *) svg, size);
    assert (text);
    const char *body = strstr (text, "</defs>");
    size_t count = 0;
    for (const char *s = strstr (body? body: text, "<path"); s; s = strstr (s + 1, "<path"))
        count++;
    free (text);
    return count;
}

//  Renders `self` as PNG and decodes it; the frame of the drawing in *frame.

static cairo_surface_t *
s_test_render (trk_chart_t *self, s_frame_t *frame)
{
    unsigned char *png = NULL;
    size_t size = 0;
    assert (trk_chart_render_png (self, &png, &size) == 0);
    cairo_surface_t *image = trk_chart_test_decode (png, size, self->width, self->height);
    free (png);
    cairo_t *cr = cairo_create (image);
    s_frame (self, cr, 0, 0, self->width, self->height, frame);
    cairo_destroy (cr);
    return image;
}

//  Checks every rule of trk_chart.h that a picture can show.

void
trk_chart_test (bool verbose)
{
    const int64_t nov_1 = s_days_from_civil (2026, 11, 1) * S_DAY_MS;
    char text [128];

    //  Dates, both ways, either side of the epoch.
    int64_t year;
    int month, day;
    s_civil_from_days (s_days_from_civil (2024, 2, 29), &year, &month, &day);
    assert (year == 2024 && month == 2 && day == 29);
    assert (s_days_from_civil (1970, 1, 1) == 0);
    s_civil_from_days (-1, &year, &month, &day);
    assert (year == 1969 && month == 12 && day == 31);
    s_time_label (S_DAYS, nov_1 + 2 * S_DAY_MS + 5 * S_HOUR_MS, text, sizeof text);
    assert (strcmp (text, "Nov 3") == 0);
    s_time_label (S_MONTHS, nov_1, text, sizeof text);
    assert (strcmp (text, "Nov 2026") == 0);
    s_time_label (S_HOURS, nov_1 + 14 * S_HOUR_MS, text, sizeof text);
    assert (strcmp (text, "14:00") == 0);

    //  Nice value axes, durations the human way.
    s_axis_t axis;
    s_axis_init (&axis, 0, 17, false, true);
    assert (axis.lo == 0 && axis.hi == 20 && axis.step == 5 && s_axis_ticks (&axis) == 5);
    s_axis_init (&axis, 0.1, 0.93, false, false);
    assert (axis.lo == 0 && fabs (axis.step - 0.2) < 1e-12 && axis.decimals == 1);
    s_format_tick (&axis, 0.6000000001, text, sizeof text);
    assert (strcmp (text, "0.6") == 0);
    s_axis_init (&axis, TRK_CHART_MAX_VALUE, TRK_CHART_MAX_VALUE + 0.125, false, false);
    assert (axis.hi > axis.lo && s_axis_ticks (&axis) >= 2);
    assert (axis.lo <= TRK_CHART_MAX_VALUE && axis.hi >= TRK_CHART_MAX_VALUE + 0.125);
    s_axis_init (&axis, -TRK_CHART_MAX_VALUE, TRK_CHART_MAX_VALUE, false, false);
    assert (axis.lo == -TRK_CHART_MAX_VALUE && axis.hi == TRK_CHART_MAX_VALUE);
    s_axis_init (&axis, 0, 2, false, true);             //  counts: no half steps
    assert (axis.step == 1);
    s_axis_init (&axis, 0, 5400, true, true);
    assert (axis.step == 1800 && axis.hi == 5400);
    s_format_tick (&axis, 5400, text, sizeof text);
    assert (strcmp (text, "1h 30m") == 0);
    s_format_duration (2700, text, sizeof text);
    assert (strcmp (text, "45m") == 0);
    s_format_duration (30, text, sizeof text);
    assert (strcmp (text, "30s") == 0);
    s_format_duration (0, text, sizeof text);
    assert (strcmp (text, "0") == 0);
    s_format_duration (90061, text, sizeof text);
    assert (strcmp (text, "1d 1h") == 0);
    s_format_duration (3605, text, sizeof text);
    assert (strcmp (text, "1h") == 0);
    s_format_value (2.50, false, text, sizeof text);
    assert (strcmp (text, "2.5") == 0);
    s_format_value (-3, false, text, sizeof text);
    assert (strcmp (text, "-3") == 0);

    //  Date ticks follow the range: days for a month, months for years.
    cairo_surface_t *scratch = cairo_image_surface_create (CAIRO_FORMAT_RGB24, 10, 10);
    cairo_t *cr = cairo_create (scratch);
    trk_chart_font (cr, S_LABEL_SIZE, false);
    int64_t ticks [S_MAX_TICKS];
    s_unit_t unit;
    int count = s_time_ticks (cr, nov_1, nov_1 + 29 * S_DAY_MS, 700, ticks, &unit);
    assert (unit == S_DAYS && count >= 4 && count <= 30);
    for (int i = 0; i < count; i++)
        assert (ticks [i] % S_DAY_MS == 0 && ticks [i] >= nov_1);
    count = s_time_ticks (cr, nov_1, nov_1 + 730 * S_DAY_MS, 700, ticks, &unit);
    assert (unit == S_MONTHS && count >= 4);
    s_time_label (unit, ticks [0], text, sizeof text);
    assert (strcmp (text, "Dec 2026") == 0 || strcmp (text, "Jan 2027") == 0);
    count = s_time_ticks (cr, TRK_CHART_MIN_TIME_MS, TRK_CHART_MAX_TIME_MS, 200, ticks, &unit);
    assert (unit == S_YEARS && count >= 1 && count <= 4);

    //  Text is fitted on character boundaries, never inside one.
    const char *accents = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";    //  6 × é
    size_t fit = trk_chart_text_fit (cr, accents, strlen (accents), 20);
    assert (fit > 0 && fit < strlen (accents) && fit % 2 == 0);
    assert (trk_chart_text_fit (cr, accents, strlen (accents), 1000) == strlen (accents));
    assert (trk_chart_text_fit (cr, accents, strlen (accents), 0.5) == 0);
    cairo_destroy (cr);
    cairo_surface_destroy (scratch);

    //  Creation, sizes, titles.
    trk_chart_t *chart = trk_chart_new (TRK_CHART_LINE, "Weight");
    assert (chart);
    assert (trk_chart_set_size (chart, TRK_CHART_MIN_WIDTH - 1, 300) == TL_EINVAL);
    assert (trk_chart_set_size (chart, TRK_CHART_MAX_WIDTH + 1, 300) == TL_ETOOBIG);
    assert (trk_chart_set_size (chart, 400, TRK_CHART_MIN_HEIGHT - 1) == TL_EINVAL);
    assert (trk_chart_set_size (chart, 400, TRK_CHART_MAX_HEIGHT + 1) == TL_ETOOBIG);
    assert (chart->width == TRK_CHART_DEFAULT_WIDTH && chart->height == TRK_CHART_DEFAULT_HEIGHT);
    assert (trk_chart_set_size (chart, 640, 360) == 0);
    assert (trk_chart_new (TRK_CHART_LINE, "bad \xc3\x28") == NULL);
    assert (trk_chart_set_title (chart, "\xe2\x82") == TL_EINVAL);
    assert (trk_chart_set_unit (chart, "k\xffg") == TL_EINVAL);
    char long_title [TRK_CHART_MAX_TITLE * 2 + 3] = "";
    for (int i = 0; i < TRK_CHART_MAX_TITLE; i++)
        strcat (long_title, "\xc3\xa9");
    assert (trk_chart_set_title (chart, long_title) == 0);      //  100 characters
    strcat (long_title, "x");
    assert (trk_chart_set_title (chart, long_title) == TL_ETOOBIG);
    assert (strcmp (chart->title, long_title) != 0);            //  unchanged
    assert (trk_chart_set_unit (chart, "kg") == 0);
    assert (trk_chart_set_range (chart, nov_1, nov_1) == TL_EINVAL);
    assert (trk_chart_set_range (chart, TRK_CHART_MIN_TIME_MS - 1, nov_1) == TL_EINVAL);

    //  Bad points are refused.
    assert (trk_chart_add_point (chart, nov_1, NAN) == TL_EINVAL);
    assert (trk_chart_add_point (chart, nov_1, INFINITY) == TL_EINVAL);
    assert (trk_chart_add_point (chart, nov_1, -INFINITY) == TL_EINVAL);
    assert (trk_chart_add_point (chart, nov_1, 2 * TRK_CHART_MAX_VALUE) == TL_EINVAL);
    assert (trk_chart_add_point (chart, TRK_CHART_MAX_TIME_MS + 1, 1) == TL_EINVAL);
    assert (trk_chart_add_bar (chart, "x", 1, 0) == TL_EINVAL);
    assert (trk_chart_size (chart) == 0);

    //  An empty chart shows its frame and the message, not the series.
    assert (trk_chart_set_range (chart, nov_1, nov_1 + 30 * S_DAY_MS) == 0);
    s_frame_t frame;
    cairo_surface_t *empty = s_test_render (chart, &frame);
    assert (frame.empty && frame.plot_w > 400 && frame.plot_h > 200);
    int px = (int) frame.plot_x + 2, py = (int) frame.plot_y + 2;
    int pw = (int) frame.plot_w - 4, ph = (int) frame.plot_h - 4;
    assert (s_test_count (empty, px, py, pw, ph, S_RGB_SERIES) == 0);
    //  ... the message in the middle, and the axis in its place.
    assert (s_test_count (empty, px, py + ph / 2 - 12, pw, 20, S_RGB_BACKGROUND) < (size_t) pw * 20);
    assert (trk_chart_test_pixel (empty, floor (frame.plot_x), frame.plot_y + 10) != S_RGB_BACKGROUND);
    //  ... the title (100 characters, cut to fit) above, within its margins.
    assert (s_test_count (empty, 0, 6, 640, 24, S_RGB_BACKGROUND) < 640 * 24 - 200);
    assert (s_test_count (empty, 0, 6, 10, 24, S_RGB_BACKGROUND) == 10 * 24);
    assert (s_test_count (empty, 630, 6, 10, 24, S_RGB_BACKGROUND) == 10 * 24);
    assert (trk_chart_set_title (chart, NULL) == 0);
    cairo_surface_t *untitled = s_test_render (chart, &frame);
    assert (s_test_count (untitled, 0, 0, 640, 10, S_RGB_BACKGROUND) == 640 * 10);
    cairo_surface_destroy (untitled);
    assert (trk_chart_set_title (chart, "Weight") == 0);

    //  With points (out of order, one outside the range), the series shows
    //  where its values say.
    for (int i = 29; i >= 0; i--)
        assert (trk_chart_add_point (chart, nov_1 + i * S_DAY_MS + 12 * S_HOUR_MS, 70 + i % 3) == 0);
    assert (trk_chart_add_point (chart, nov_1 + 40 * S_DAY_MS, 1000) == 0);
    cairo_surface_t *drawn = s_test_render (chart, &frame);
    assert (!frame.empty && frame.last - frame.first == 30);
    assert (frame.axis.lo <= 70 && frame.axis.hi >= 72 && frame.axis.hi < 1000);
    assert (s_test_count (drawn, px, py, pw, ph, S_RGB_SERIES) > 100);     //  the dots
    //  The dot of Nov 2 (71) is where the axes put it.
    int64_t t = nov_1 + 1 * S_DAY_MS + 12 * S_HOUR_MS;
    assert (trk_chart_test_pixel (drawn, s_time_x (&frame, t), s_value_y (&frame, 71)) == S_RGB_SERIES);
    assert (trk_chart_test_pixel (drawn, s_time_x (&frame, t), s_value_y (&frame, 71) - 40)
            != S_RGB_SERIES);
    cairo_surface_destroy (empty);
    cairo_surface_destroy (drawn);

    //  SVG: an XML document, bigger with the series than without.
    unsigned char *svg = NULL;
    size_t svg_size = 0;
    assert (trk_chart_render_svg (chart, &svg, &svg_size) == 0);
    assert (svg_size > 100 && memcmp (svg, "<?xml", 5) == 0);
    char *svg_text = strndup ((const char *) svg, svg_size);
    assert (svg_text && strstr (svg_text, "<svg") && strstr (svg_text, "</svg>"));
    assert (strstr (svg_text, "width=\"640") && strstr (svg_text, "height=\"360"));
    free (svg_text);
    //  The same chart gives the same bytes (cairo's surface counter is
    //  process-wide: the ids are renumbered), so its ETag is stable.
    for (int again = 0; again < 2; again++) {
        unsigned char *twin = NULL;
        size_t twin_size = 0;
        assert (trk_chart_render_svg (chart, &twin, &twin_size) == 0);
        assert (twin_size == svg_size && memcmp (twin, svg, svg_size) == 0);
        free (twin);
    }
    trk_chart_t *bare = trk_chart_new (TRK_CHART_LINE, "Weight");
    assert (bare);
    assert (trk_chart_set_size (bare, 640, 360) == 0);
    assert (trk_chart_set_range (bare, nov_1, nov_1 + 30 * S_DAY_MS) == 0);
    unsigned char *bare_svg = NULL;
    size_t bare_size = 0;
    assert (trk_chart_render_svg (bare, &bare_svg, &bare_size) == 0);
    assert (memcmp (bare_svg, "<?xml", 5) == 0);
    //  The drawing (after the glyph definitions): a path per dot.
    size_t paths = s_test_paths (svg, svg_size);
    size_t bare_paths = s_test_paths (bare_svg, bare_size);
    assert (paths >= bare_paths + 30);
    free (bare_svg);
    free (svg);
    trk_chart_destroy (&bare);

    //  Drawing needs a sane rectangle.
    scratch = cairo_image_surface_create (CAIRO_FORMAT_RGB24, 10, 10);
    cr = cairo_create (scratch);
    assert (trk_chart_draw (chart, cr, 0, 0, 0, 100) == TL_EINVAL);
    assert (trk_chart_draw (chart, cr, 0, 0, NAN, 100) == TL_EINVAL);
    assert (trk_chart_draw (chart, cr, 0, 0, 100, TRK_CHART_MAX_HEIGHT + 1) == TL_EINVAL);
    assert (trk_chart_draw (chart, cr, 0, 0, 10, 10) == 0);    //  tiny, but fine
    cairo_destroy (cr);
    cairo_surface_destroy (scratch);
    trk_chart_destroy (&chart);
    assert (chart == NULL);
    trk_chart_destroy (&chart);

    //  100,000 points render, decimated; one more is refused.
    chart = trk_chart_new (TRK_CHART_LINE, NULL);
    assert (chart);
    trk_chart_set_duration (chart, true);
    for (int i = 0; i < TRK_CHART_MAX_POINTS; i++)
        assert (trk_chart_add_point (chart, nov_1 + (int64_t) i * 60000,
                                     1800 + 1800 * sin (i / 500.0)) == 0);
    assert (trk_chart_add_point (chart, nov_1, 1) == TL_ETOOBIG);
    assert (trk_chart_size (chart) == TRK_CHART_MAX_POINTS);
    clock_t started = clock ();
    cairo_surface_t *dense = s_test_render (chart, &frame);
    double seconds = (double) (clock () - started) / CLOCKS_PER_SEC;
    if (verbose)
        printf ("\n  100000 points: %.3f s\n", seconds);
    assert (frame.axis.duration && frame.axis.lo == 0 && frame.axis.hi >= 3600);
    assert (s_test_count (dense, (int) frame.plot_x + 2, (int) frame.plot_y, (int) frame.plot_w - 4,
                          (int) frame.plot_h, S_RGB_SERIES) > 500);
    cairo_surface_destroy (dense);
    trk_chart_destroy (&chart);

    //  Bar charts: each bar in its colour, where its value says.
    chart = trk_chart_new (TRK_CHART_BAR, "Mood \xf0\x9f\x99\x82");
    assert (chart);
    assert (trk_chart_add_point (chart, nov_1, 1) == TL_EINVAL);
    assert (trk_chart_add_bar (chart, "x", NAN, 0) == TL_EINVAL);
    assert (trk_chart_add_bar (chart, "x", 1, 0x1000000) == TL_EINVAL);
    assert (trk_chart_add_bar (chart, "\xc0\xaf", 1, 0) == TL_EINVAL);     //  overlong
    assert (trk_chart_add_bar (chart, long_title, 1, 0) == TL_ETOOBIG);
    empty = s_test_render (chart, &frame);      //  no bars
    assert (frame.empty);
    assert (trk_chart_add_bar (chart, "awful", 2, 0xa50026) == 0);
    assert (trk_chart_add_bar (chart, "great \xe2\x80\x94 really, truly great, the best", 8, 0x1a9850) == 0);
    assert (trk_chart_add_bar (chart, NULL, 5, 0) == 0);
    drawn = s_test_render (chart, &frame);
    assert (!frame.empty && frame.axis.lo == 0 && frame.axis.hi >= 8);
    uint32_t colours [3] = { 0xa50026, 0x1a9850, S_RGB_SERIES };
    for (size_t i = 0; i < 3; i++) {
        double x, y, width, height;
        s_bar_rect (chart, &frame, i, &x, &y, &width, &height);
        assert (trk_chart_test_pixel (drawn, x + width / 2, y + height / 2) == colours [i]);
        assert (trk_chart_test_pixel (drawn, x + width / 2, y - 20) != colours [i]);
        assert (trk_chart_test_pixel (empty, x + width / 2, y + height / 2) != colours [i]);
    }
    cairo_surface_destroy (empty);
    cairo_surface_destroy (drawn);
    //  All zero: the bars' labels, and the message.
    trk_chart_t *zeros = trk_chart_new (TRK_CHART_BAR, NULL);
    assert (zeros);
    assert (trk_chart_add_bar (zeros, "yes", 0, 0) == 0);
    assert (trk_chart_add_bar (zeros, "no", 0, 0) == 0);
    empty = s_test_render (zeros, &frame);
    assert (frame.empty);
    cairo_surface_destroy (empty);
    trk_chart_destroy (&zeros);
    for (size_t i = chart->nbars; i < TRK_CHART_MAX_BARS; i++)
        assert (trk_chart_add_bar (chart, "a rather long label for a narrow bar", (double) i, 0) == 0);
    assert (trk_chart_add_bar (chart, "one too many", 1, 0) == TL_ETOOBIG);
    unsigned char *png = NULL;
    size_t png_size = 0;
    assert (trk_chart_render_png (chart, &png, &png_size) == 0);
    cairo_surface_destroy (trk_chart_test_decode (png, png_size, TRK_CHART_DEFAULT_WIDTH,
                                          TRK_CHART_DEFAULT_HEIGHT));
    free (png);
    trk_chart_destroy (&chart);
    trk_chart_release_fonts ();
}
