//  trk_board.h — a mood tracker's year in pixels: a 12 × 31 grid, one row
//  per month and one square per day, coloured by that day's mood.
//  Moods are 1..5 (awful, bad, okay, good, great), each with a fixed
//  colour. A day with no mood is light grey; a day with two moods is split
//  along its diagonal, the first mood top-left, the second bottom-right;
//  days the month does not have (Feb 30, Apr 31) are left blank. Month
//  names run down the left, day numbers along the top, the title above and
//  a legend of the five moods below. Drawn with cairo, like trk_chart.
#ifndef TRK_BOARD_H_INCLUDED
#define TRK_BOARD_H_INCLUDED

#include <stdbool.h>
#include "trk_limits.h"
#include <stddef.h>
#include <stdint.h>
#include <cairo.h>

typedef struct _trk_board_t trk_board_t;

//  Creates an empty board of `year` (TRK_BOARD_MIN_YEAR..MAX_YEAR), headed
//  "<title> — <year>"; `title` is the tracker's name (NULL for none), UTF-8
//  of at most TRK_BOARD_MAX_TITLE characters. Returns NULL for a year or
//  title out of bounds, or on allocation failure.
trk_board_t *trk_board_new (int year, const char *title);

//  Destroys the board and nulls the caller's reference. Safe on NULL.
void trk_board_destroy (trk_board_t **self_p);

//  Sets the moods of a day: `count` (0..TRK_BOARD_MAX_MOODS_PER_DAY) moods
//  from `moods`, in the order logged; 0 clears the day. Returns 0, or
//  TL_EINVAL for a date the year does not have (leap years counted), a
//  mood outside 1..5, or a bad count; the day is unchanged on failure.
int trk_board_set_day (trk_board_t *self, int month, int day, const int *moods, int count);

//  Draws the board into the rectangle (x, y, width, height) of `cr`, as
//  large as fits with its proportions kept, centred, leaving cr's state as
//  it was. Returns 0, TL_EINVAL for an empty, non-finite or larger than
//  TRK_CHART_MAX_WIDTH/HEIGHT rectangle, TL_ENOMEM, or TL_EIO when cr is
//  (or gets) in an error state.
int trk_board_draw (trk_board_t *self, cairo_t *cr,
                    double x, double y, double width, double height);

//  Renders the board as a TRK_BOARD_PNG_WIDTH × _HEIGHT PNG image. On
//  success returns 0 and the image at *data_p (malloc'd: the caller frees
//  it), its size at *size_p. Returns TL_ENOMEM, TL_ETOOBIG or TL_EIO,
//  leaving *data_p NULL.
int trk_board_render_png (trk_board_t *self, unsigned char **data_p, size_t *size_p);

//  Returns the name of a mood, "awful" (1) .. "great" (5); NULL for any
//  other number. Static.
const char *trk_board_mood_name (int mood);

//  Returns the colour of a mood as 0xRRGGBB; 0 for any other number (the
//  default colour of trk_chart_add_bar).
uint32_t trk_board_mood_rgb (int mood);

//  Self-test, run by ctest.
void trk_board_test (bool verbose);

#endif
