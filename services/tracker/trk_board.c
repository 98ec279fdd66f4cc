//  trk_board.c — a mood tracker's year in pixels (see trk_board.h).
//  Everything is measured in cells: the board is S_COLUMNS × S_ROWS cells
//  (the grid, the month names, the day numbers, the title and the legend)
//  and s_layout fits that into the rectangle it is given, so that the PNG
//  and a report's page share one drawing and the self-test finds a day's
//  square where the drawing put it. Text goes through trk_chart's helpers.
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trk_board.h"
#include "trk_chart.h"
#include "tl_error.h"
#include "tl_json.h"
#include "trk_limits.h"

#define S_MOODS             5
#define S_LEFT              2.6     //  cells: month names
#define S_RIGHT             0.5
#define S_TITLE             1.8     //  cells: the title ...
#define S_DAYS              1.0     //  ... the day numbers
#define S_LEGEND            2.0     //  cells: the legend
#define S_COLUMNS           (S_LEFT + 31 + S_RIGHT)
#define S_ROWS              (S_TITLE + S_DAYS + 12 + S_LEGEND)

#define S_RGB_BACKGROUND    0xffffff
#define S_RGB_EMPTY         0xe6e6e6    //  a day without a mood
#define S_RGB_TEXT          0x333333
#define S_RGB_MUTED         0x777777

struct _trk_board_t {
    int year;
    char *title;                        //  NULL for none
    unsigned char count [12][31];       //  moods of each day
    unsigned char moods [12][31][TRK_BOARD_MAX_MOODS_PER_DAY];
};

//  Where things go in a rectangle.
typedef struct {
    double cell;                //  side of a day's square
    double left, top;           //  of the board, centred in the rectangle
    double grid_x, grid_y;      //  of January 1st
} s_layout_t;

static const struct {
    const char *name;
    uint32_t rgb;
} s_moods [S_MOODS] = {
    { "awful", 0xa50026 },      //  dark red
    { "bad",   0xf46d43 },      //  orange
    { "okay",  0xfee08b },      //  yellow
    { "good",  0xa6d96a },      //  light green
    { "great", 0x1a9850 },      //  green
};

//  Returns the number of days of `month` (1..12) in `year`.

static int
s_days_in_month (int year, int month)
{
    static const int days [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap? 29: days [month - 1];
}


//  Fits the board into (x, y, width, height). Whole pixels when the cells
//  are big enough for it to matter.

static void
s_layout (double x, double y, double width, double height, s_layout_t *layout)
{
    double cell = fmin (width / S_COLUMNS, height / S_ROWS);
    if (cell >= 8)
        cell = floor (cell);
    layout->cell = cell;
    layout->left = x + (width - cell * S_COLUMNS) / 2;
    layout->top = y + (height - cell * S_ROWS) / 2;
    layout->grid_x = layout->left + S_LEFT * cell;
    layout->grid_y = layout->top + (S_TITLE + S_DAYS) * cell;
    if (cell >= 8) {
        layout->grid_x = floor (layout->grid_x);
        layout->grid_y = floor (layout->grid_y);
    }
}


//  Returns the square of a day (inside its cell, leaving a white line).

static void
s_day_rect (const s_layout_t *layout, int month, int day,
            double *x_p, double *y_p, double *side_p)
{
    double gap = layout->cell >= 8? 1: layout->cell * 0.1;
    *x_p = layout->grid_x + (day - 1) * layout->cell + gap;
    *y_p = layout->grid_y + (month - 1) * layout->cell + gap;
    *side_p = layout->cell - 2 * gap;
}


//  --------------------------------------------------------------------------
//  Creates a board.

trk_board_t *
trk_board_new (int year, const char *title)
{
    if (year < TRK_BOARD_MIN_YEAR || year > TRK_BOARD_MAX_YEAR)
        return NULL;
    if (title && *title) {
        size_t size = strlen (title);
        if (size > TRK_BOARD_MAX_TITLE * 4 || !tl_json_utf8_valid (title, size))
            return NULL;
        size_t chars = 0;
        for (size_t i = 0; i < size; i++)
            chars += ((unsigned char) title [i] & 0xc0) != 0x80;
        if (chars > TRK_BOARD_MAX_TITLE)
            return NULL;
    }
    trk_board_t *self = (trk_board_t *) calloc (1, sizeof (trk_board_t));
    if (!self)
        return NULL;
    self->year = year;
    if (title && *title) {
        self->title = strdup (title);
        if (!self->title)
            trk_board_destroy (&self);
    }
    return self;
}


//  --------------------------------------------------------------------------
//  Destroys a board.

void
trk_board_destroy (trk_board_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        trk_board_t *self = *self_p;
        free (self->title);
        free (self);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  Sets the moods of a day.

int
trk_board_set_day (trk_board_t *self, int month, int day, const int *moods, int count)
{
    assert (self);
    if (month < 1 || month > 12 || day < 1 || day > s_days_in_month (self->year, month))
        return TL_EINVAL;
    if (count < 0 || count > TRK_BOARD_MAX_MOODS_PER_DAY || (count && !moods))
        return TL_EINVAL;
    for (int i = 0; i < count; i++)
        if (moods [i] < 1 || moods [i] > S_MOODS)
            return TL_EINVAL;
    self->count [month - 1][day - 1] = (unsigned char) count;
    for (int i = 0; i < count; i++)
        self->moods [month - 1][day - 1][i] = (unsigned char) moods [i];
    return 0;
}


//  Returns the name of a mood, or NULL.

const char *
trk_board_mood_name (int mood)
{
    return mood >= 1 && mood <= S_MOODS? s_moods [mood - 1].name: NULL;
}


//  Returns the colour of a mood, or 0.

uint32_t
trk_board_mood_rgb (int mood)
{
    return mood >= 1 && mood <= S_MOODS? s_moods [mood - 1].rgb: 0;
}


//  Draws the title, centred above the grid: the tracker's name, cut to
//  fit, then the year.

static void
s_draw_title (trk_board_t *self, cairo_t *cr, const s_layout_t *layout)
{
    double cell = layout->cell;
    double width = 31 * cell;
    double baseline = layout->top + S_TITLE * cell * 0.65;
    char year [32];
    snprintf (year, sizeof year, "%s%d", self->title? " \xe2\x80\x94 ": "", self->year);
    trk_chart_font (cr, cell * 0.62, true);
    trk_chart_set_rgb (cr, S_RGB_TEXT);
    cairo_text_extents_t extents;
    cairo_text_extents (cr, year, &extents);
    double year_width = extents.x_advance;
    double title_width = 0;
    if (self->title) {
        cairo_text_extents (cr, self->title, &extents);
        title_width = fmin (extents.x_advance, width - year_width);
    }
    double start = layout->grid_x + (width - title_width - year_width) / 2;
    if (self->title)
        trk_chart_text_show (cr, self->title, start, baseline, title_width, 0);
    cairo_move_to (cr, start + title_width, baseline);
    cairo_show_text (cr, year);
}


//  Draws the legend: the five moods' colours and names, centred below.

static void
s_draw_legend (cairo_t *cr, const s_layout_t *layout)
{
    double cell = layout->cell;
    double swatch = cell * 0.6;
    double y = layout->grid_y + 12 * cell + cell * 0.7;
    trk_chart_font (cr, cell * 0.45, false);
    double names [S_MOODS];
    double total = 0;
    for (int i = 0; i < S_MOODS; i++) {
        cairo_text_extents_t extents;
        cairo_text_extents (cr, s_moods [i].name, &extents);
        names [i] = extents.x_advance;
        total += swatch + cell * 0.25 + names [i] + (i < S_MOODS - 1? cell: 0);
    }
    double x = layout->grid_x + (31 * cell - total) / 2;
    for (int i = 0; i < S_MOODS; i++) {
        trk_chart_set_rgb (cr, s_moods [i].rgb);
        cairo_rectangle (cr, x, y, swatch, swatch);
        cairo_fill (cr);
        x += swatch + cell * 0.25;
        trk_chart_set_rgb (cr, S_RGB_TEXT);
        cairo_move_to (cr, x, y + swatch * 0.85);
        cairo_show_text (cr, s_moods [i].name);
        x += names [i] + cell;
    }
}


//  --------------------------------------------------------------------------
//  Draws the board onto a cairo context.

int
trk_board_draw (trk_board_t *self, cairo_t *cr,
                double x, double y, double width, double height)
{
    assert (self);
    assert (cr);
    if (!isfinite (x) || !isfinite (y) || !isfinite (width) || !isfinite (height)
    ||  width <= 0 || height <= 0 || width > TRK_CHART_MAX_WIDTH || height > TRK_CHART_MAX_HEIGHT)
        return TL_EINVAL;
    if (cairo_status (cr) != CAIRO_STATUS_SUCCESS)
        return TL_EIO;
    cairo_save (cr);
    cairo_rectangle (cr, x, y, width, height);
    cairo_clip (cr);
    trk_chart_set_rgb (cr, S_RGB_BACKGROUND);
    cairo_paint (cr);

    s_layout_t layout;
    s_layout (x, y, width, height, &layout);
    double cell = layout.cell;
    s_draw_title (self, cr, &layout);

    //  Day numbers along the top, month names down the left.
    trk_chart_font (cr, cell * 0.4, false);
    trk_chart_set_rgb (cr, S_RGB_MUTED);
    for (int day = 1; day <= 31; day++) {
        char number [4];
        snprintf (number, sizeof number, "%d", day);
        trk_chart_text_show (cr, number, layout.grid_x + (day - 1) * cell,
                             layout.grid_y - cell * 0.3, cell, 0.5);
    }
    trk_chart_font (cr, cell * 0.45, false);
    for (int month = 1; month <= 12; month++)
        trk_chart_text_show (cr, trk_chart_month_name (month), layout.left,
                             layout.grid_y + (month - 0.32) * cell,
                             layout.grid_x - layout.left - cell * 0.3, 1);

    //  The days: grey, one colour, or two split along the diagonal.
    for (int month = 1; month <= 12; month++) {
        int days = s_days_in_month (self->year, month);
        for (int day = 1; day <= days; day++) {
            double left, top, side;
            s_day_rect (&layout, month, day, &left, &top, &side);
            int count = self->count [month - 1][day - 1];
            const unsigned char *moods = self->moods [month - 1][day - 1];
            trk_chart_set_rgb (cr, count? s_moods [moods [0] - 1].rgb: S_RGB_EMPTY);
            cairo_rectangle (cr, left, top, side, side);
            cairo_fill (cr);
            if (count == 2) {
                trk_chart_set_rgb (cr, s_moods [moods [1] - 1].rgb);
                cairo_move_to (cr, left + side, top);
                cairo_line_to (cr, left + side, top + side);
                cairo_line_to (cr, left, top + side);
                cairo_close_path (cr);
                cairo_fill (cr);
            }
        }
    }
    s_draw_legend (cr, &layout);
    cairo_restore (cr);
    cairo_status_t status = cairo_status (cr);
    return status == CAIRO_STATUS_SUCCESS? 0
         : status == CAIRO_STATUS_NO_MEMORY? TL_ENOMEM: TL_EIO;
}


//  --------------------------------------------------------------------------
//  Renders the board as PNG.

int
trk_board_render_png (trk_board_t *self, unsigned char **data_p, size_t *size_p)
{
    assert (self);
    assert (data_p);
    assert (size_p);
    *data_p = NULL;
    *size_p = 0;
    cairo_surface_t *surface = cairo_image_surface_create (
        CAIRO_FORMAT_RGB24, TRK_BOARD_PNG_WIDTH, TRK_BOARD_PNG_HEIGHT);
    cairo_status_t status = cairo_surface_status (surface);
    int rc = status == CAIRO_STATUS_SUCCESS? 0
           : status == CAIRO_STATUS_NO_MEMORY? TL_ENOMEM: TL_EIO;
    if (rc == 0) {
        cairo_t *cr = cairo_create (surface);
        rc = trk_board_draw (self, cr, 0, 0, TRK_BOARD_PNG_WIDTH, TRK_BOARD_PNG_HEIGHT);
        cairo_destroy (cr);
    }
    if (rc == 0)
        rc = trk_chart_surface_png (surface, data_p, size_p);
    cairo_surface_destroy (surface);
    return rc;
}


//  --------------------------------------------------------------------------
//  Self-test

static cairo_surface_t *
s_test_render (trk_board_t *self)
{
    unsigned char *png = NULL;
    size_t size = 0;
    assert (trk_board_render_png (self, &png, &size) == 0);
    cairo_surface_t *image = trk_chart_test_decode (png, size, TRK_BOARD_PNG_WIDTH,
                                                    TRK_BOARD_PNG_HEIGHT);
    free (png);
    cairo_surface_flush (image);
    return image;
}

//  Returns the colour at a fraction (fx, fy) of a day's square.

static uint32_t
s_test_day (cairo_surface_t *image, const s_layout_t *layout, int month, int day,
            double fx, double fy)
{
    double x, y, side;
    s_day_rect (layout, month, day, &x, &y, &side);
    return trk_chart_test_pixel (image, x + side * fx, y + side * fy);
}

//  Checks the dates, the moods and the colours each day gets.

void
trk_board_test (bool verbose)
{
    //  The palette, for the mood bar chart too.
    assert (strcmp (trk_board_mood_name (1), "awful") == 0);
    assert (strcmp (trk_board_mood_name (3), "okay") == 0);
    assert (strcmp (trk_board_mood_name (5), "great") == 0);
    assert (trk_board_mood_name (0) == NULL && trk_board_mood_name (6) == NULL);
    assert (trk_board_mood_rgb (0) == 0 && trk_board_mood_rgb (6) == 0);
    for (int mood = 1; mood <= S_MOODS; mood++) {
        assert (trk_board_mood_rgb (mood) != 0 && trk_board_mood_rgb (mood) != S_RGB_EMPTY);
        for (int other = 1; other < mood; other++)
            assert (trk_board_mood_rgb (mood) != trk_board_mood_rgb (other));
    }

    //  Years and titles within bounds.
    assert (trk_board_new (TRK_BOARD_MIN_YEAR - 1, "Mood") == NULL);
    assert (trk_board_new (TRK_BOARD_MAX_YEAR + 1, "Mood") == NULL);
    assert (trk_board_new (2026, "bad \xe2\x28\xa1") == NULL);
    char long_title [TRK_BOARD_MAX_TITLE * 3 + 2] = "";
    for (int i = 0; i < TRK_BOARD_MAX_TITLE; i++)
        strcat (long_title, "\xe2\x82\xac");                     //  €
    trk_board_t *board = trk_board_new (2026, long_title);
    assert (board);
    trk_board_destroy (&board);
    assert (board == NULL);
    trk_board_destroy (&board);
    strcat (long_title, "x");
    assert (trk_board_new (2026, long_title) == NULL);

    //  Only dates the year has; Feb 29 in leap years only.
    board = trk_board_new (2023, "Mood");
    assert (board);
    int great [1] = { 5 };
    assert (trk_board_set_day (board, 2, 29, great, 1) == TL_EINVAL);
    assert (trk_board_set_day (board, 2, 30, great, 1) == TL_EINVAL);
    assert (trk_board_set_day (board, 4, 31, great, 1) == TL_EINVAL);
    assert (trk_board_set_day (board, 0, 1, great, 1) == TL_EINVAL);
    assert (trk_board_set_day (board, 13, 1, great, 1) == TL_EINVAL);
    assert (trk_board_set_day (board, 1, 0, great, 1) == TL_EINVAL);
    assert (trk_board_set_day (board, 1, 32, great, 1) == TL_EINVAL);
    assert (trk_board_set_day (board, 12, 31, great, 1) == 0);
    assert (trk_board_set_day (board, 2, 28, great, 1) == 0);
    trk_board_destroy (&board);
    int leap_years [] = { 2024, 2000, 1904 };
    int common_years [] = { 1900, 2100, 2025 };
    for (int i = 0; i < 3; i++) {
        board = trk_board_new (leap_years [i], NULL);
        assert (board && trk_board_set_day (board, 2, 29, great, 1) == 0);
        trk_board_destroy (&board);
        board = trk_board_new (common_years [i], NULL);
        assert (board && trk_board_set_day (board, 2, 29, great, 1) == TL_EINVAL);
        trk_board_destroy (&board);
    }

    //  Moods 1..5, at most two; a refused call leaves the day as it was.
    board = trk_board_new (2024, "My mood \xf0\x9f\x8c\x88");
    assert (board);
    int two [2] = { 1, 4 };
    int bad [2] = { 3, 6 };
    int three [3] = { 1, 2, 3 };
    int zero [1] = { 0 };
    assert (trk_board_set_day (board, 6, 1, two, 2) == 0);
    assert (trk_board_set_day (board, 6, 1, bad, 2) == TL_EINVAL);
    assert (trk_board_set_day (board, 6, 1, zero, 1) == TL_EINVAL);
    assert (trk_board_set_day (board, 6, 1, three, 3) == TL_EINVAL);
    assert (trk_board_set_day (board, 6, 1, two, -1) == TL_EINVAL);
    assert (trk_board_set_day (board, 6, 1, NULL, 1) == TL_EINVAL);
    assert (board->count [5][0] == 2 && board->moods [5][0][0] == 1 && board->moods [5][0][1] == 4);
    assert (trk_board_set_day (board, 3, 14, great, 1) == 0);
    assert (trk_board_set_day (board, 7, 4, great, 1) == 0);
    assert (trk_board_set_day (board, 7, 4, NULL, 0) == 0);         //  cleared
    assert (trk_board_set_day (board, 12, 31, two, 2) == 0);

    //  The picture: each day's square in its colours.
    cairo_surface_t *image = s_test_render (board);
    s_layout_t layout;
    s_layout (0, 0, TRK_BOARD_PNG_WIDTH, TRK_BOARD_PNG_HEIGHT, &layout);
    assert (layout.cell >= 20);
    assert (layout.grid_x + 31 * layout.cell <= TRK_BOARD_PNG_WIDTH);
    assert (layout.top + S_ROWS * layout.cell <= TRK_BOARD_PNG_HEIGHT);
    //  One mood: all of the square.
    assert (s_test_day (image, &layout, 3, 14, 0.5, 0.5) == trk_board_mood_rgb (5));
    assert (s_test_day (image, &layout, 3, 14, 0.1, 0.9) == trk_board_mood_rgb (5));
    //  Two moods: the first top-left, the second bottom-right.
    assert (s_test_day (image, &layout, 6, 1, 0.2, 0.2) == trk_board_mood_rgb (1));
    assert (s_test_day (image, &layout, 6, 1, 0.8, 0.8) == trk_board_mood_rgb (4));
    assert (s_test_day (image, &layout, 12, 31, 0.25, 0.1) == trk_board_mood_rgb (1));
    assert (s_test_day (image, &layout, 12, 31, 0.9, 0.75) == trk_board_mood_rgb (4));
    //  No mood (or a cleared one): grey. Feb 29 exists in 2024.
    assert (s_test_day (image, &layout, 7, 4, 0.5, 0.5) == S_RGB_EMPTY);
    assert (s_test_day (image, &layout, 1, 1, 0.5, 0.5) == S_RGB_EMPTY);
    assert (s_test_day (image, &layout, 2, 29, 0.5, 0.5) == S_RGB_EMPTY);
    //  No such day: blank.
    assert (s_test_day (image, &layout, 2, 30, 0.5, 0.5) == S_RGB_BACKGROUND);
    assert (s_test_day (image, &layout, 2, 31, 0.5, 0.5) == S_RGB_BACKGROUND);
    assert (s_test_day (image, &layout, 4, 31, 0.5, 0.5) == S_RGB_BACKGROUND);
    //  Between squares: a white line.
    double x, y, side;
    s_day_rect (&layout, 3, 14, &x, &y, &side);
    assert (trk_chart_test_pixel (image, x + side + 0.5, y + side / 2) == S_RGB_BACKGROUND);
    //  The legend shows each mood's colour below the grid.
    for (int mood = 1; mood <= S_MOODS; mood++) {
        size_t found = 0;
        for (double row = layout.grid_y + 12 * layout.cell; row < TRK_BOARD_PNG_HEIGHT; row++)
            for (int col = 0; col < TRK_BOARD_PNG_WIDTH; col++)
                found += trk_chart_test_pixel (image, col, row) == trk_board_mood_rgb (mood);
        assert (found >= 25);
    }
    cairo_surface_destroy (image);

    //  In 2023 Feb 29 is blank.
    trk_board_t *common = trk_board_new (2023, NULL);
    assert (common);
    image = s_test_render (common);
    assert (s_test_day (image, &layout, 2, 29, 0.5, 0.5) == S_RGB_BACKGROUND);
    assert (s_test_day (image, &layout, 2, 28, 0.5, 0.5) == S_RGB_EMPTY);
    cairo_surface_destroy (image);
    trk_board_destroy (&common);

    //  Drawn small (a report's page) and refused when the rectangle is bad.
    cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24, 500, 260);
    cairo_t *cr = cairo_create (surface);
    assert (trk_board_draw (board, cr, 0, 0, 500, 260) == 0);
    assert (trk_board_draw (board, cr, 0, 0, 40, 20) == 0);
    assert (trk_board_draw (board, cr, 0, 0, 0, 260) == TL_EINVAL);
    assert (trk_board_draw (board, cr, 0, INFINITY, 500, 260) == TL_EINVAL);
    assert (trk_board_draw (board, cr, 0, 0, TRK_CHART_MAX_WIDTH + 1, 260) == TL_EINVAL);
    cairo_destroy (cr);
    cairo_surface_destroy (surface);
    if (verbose) {
        unsigned char *png = NULL;
        size_t size = 0;
        assert (trk_board_render_png (board, &png, &size) == 0);
        printf ("\n  board.png: %zu bytes\n", size);
        free (png);
    }
    trk_board_destroy (&board);
    trk_chart_release_fonts ();
}
