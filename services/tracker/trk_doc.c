//  trk_doc.c — flowing content onto A4 PDF pages (see trk_doc.h).
//  Rendering lays the blocks out twice with one cursor: a measuring pass
//  that only counts pages (so that each foot can say "of M"), then the
//  drawing pass. Both measure text with the same cairo context and fonts,
//  so they break lines and pages in the same places. Lines are filled
//  greedily: the longest run of words that fits, found with
//  trk_chart_text_fit.
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cairo-pdf.h>

#include "trk_doc.h"
#include "tl_buf.h"
#include "tl_error.h"
#include "tl_json.h"
#include "trk_limits.h"

#define S_PAGE_WIDTH        595.276     //  A4, points
#define S_PAGE_HEIGHT       841.890
#define S_MARGIN            56.0        //  about 2 cm
#define S_CONTENT_WIDTH     (S_PAGE_WIDTH - 2 * S_MARGIN)
#define S_CONTENT_BOTTOM    (S_PAGE_HEIGHT - S_MARGIN)
#define S_FOOT_BASELINE     (S_PAGE_HEIGHT - 28)

#define S_TITLE_SIZE        20.0
#define S_TITLE_LINE        26.0
#define S_HEADING_SIZE      14.0
#define S_HEADING_LINE      19.0
#define S_HEADING_BEFORE    12.0
#define S_HEADING_AFTER     4.0
#define S_TEXT_SIZE         10.5
#define S_TEXT_LINE         14.5
#define S_FOOT_SIZE         9.0
#define S_BLOCK_AFTER       10.0        //  space after a paragraph, chart, board
#define S_CHART_HEIGHT      240.0
#define S_BOARD_HEIGHT      240.0

#define S_RGB_TEXT          0x222222
#define S_RGB_MUTED         0x777777
#define S_RGB_RULE          0xcccccc

typedef enum { S_HEADING, S_TEXT, S_CHART, S_BOARD } s_kind_t;

typedef struct {
    s_kind_t kind;
    char *text;             //  headings and paragraphs
    trk_chart_t *chart;
    trk_board_t *board;
} s_block_t;

struct _trk_doc_t {
    char *title;            //  NULL for none
    char date [32];         //  the PDF's creation date (ISO 8601), "" for now
    s_block_t *blocks;
    size_t nblocks;
    size_t ablocks;         //  allocated
    size_t text_bytes;      //  of all headings and paragraphs
};

//  Where the layout is: one per pass.
typedef struct {
    cairo_t *cr;
    char *line;             //  scratch for one line, TRK_DOC_MAX_TEXT + 1 bytes
    bool draw;              //  false: only measure
    int page;               //  1, 2, ...
    int pages;              //  the total, when drawing
    double y;               //  top of the next line or block
    int rc;                 //  the first error
} s_cursor_t;


//  Checks user text and makes a copy with control characters as spaces
//  ("\n" too unless `keep_newlines`). Returns 0, TL_EINVAL, TL_ETOOBIG or
//  TL_ENOMEM; `max_chars` 0 means no limit on characters.

static int
s_copy_text (const char *text, size_t max_bytes, size_t max_chars, bool keep_newlines,
             char **copy_p)
{
    size_t size = strlen (text);
    if (size > max_bytes)
        return TL_ETOOBIG;
    if (!tl_json_utf8_valid (text, size))
        return TL_EINVAL;
    size_t chars = 0;
    for (size_t i = 0; i < size; i++)
        chars += ((unsigned char) text [i] & 0xc0) != 0x80;
    if (max_chars && chars > max_chars)
        return TL_ETOOBIG;
    char *copy = strdup (text);
    if (!copy)
        return TL_ENOMEM;
    for (char *s = copy; *s; s++)
        if (((unsigned char) *s < 0x20 || *s == 0x7f) && !(keep_newlines && *s == '\n'))
            *s = ' ';
    *copy_p = copy;
    return 0;
}


//  --------------------------------------------------------------------------
//  Creates a document.

trk_doc_t *
trk_doc_new (const char *title)
{
    trk_doc_t *self = (trk_doc_t *) calloc (1, sizeof (trk_doc_t));
    if (!self)
        return NULL;
    if (title && *title
    &&  s_copy_text (title, TRK_DOC_MAX_TITLE * 4, TRK_DOC_MAX_TITLE, false, &self->title))
        trk_doc_destroy (&self);
    return self;
}


//  --------------------------------------------------------------------------
//  Destroys a document and what it holds.

void
trk_doc_destroy (trk_doc_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        trk_doc_t *self = *self_p;
        for (size_t i = 0; i < self->nblocks; i++) {
            free (self->blocks [i].text);
            trk_chart_destroy (&self->blocks [i].chart);
            trk_board_destroy (&self->blocks [i].board);
        }
        free (self->blocks);
        free (self->title);
        free (self);
        *self_p = NULL;
    }
}


//  Appends a block. Returns 0, TL_ETOOBIG or TL_ENOMEM; on failure the
//  block's content is the caller's still.

static int
s_append (trk_doc_t *self, s_block_t block)
{
    if (self->nblocks >= TRK_DOC_MAX_BLOCKS)
        return TL_ETOOBIG;
    if (self->nblocks == self->ablocks) {
        size_t alloc = self->ablocks? self->ablocks * 2: 16;
        if (alloc > TRK_DOC_MAX_BLOCKS)
            alloc = TRK_DOC_MAX_BLOCKS;
        s_block_t *blocks = (s_block_t *) realloc (self->blocks, alloc * sizeof (s_block_t));
        if (!blocks)
            return TL_ENOMEM;
        self->blocks = blocks;
        self->ablocks = alloc;
    }
    self->blocks [self->nblocks++] = block;
    return 0;
}


//  Adds a heading or a paragraph.

static int
s_add_text (trk_doc_t *self, s_kind_t kind, const char *text)
{
    assert (text);
    if (self->nblocks >= TRK_DOC_MAX_BLOCKS)
        return TL_ETOOBIG;
    char *copy = NULL;
    int rc = kind == S_HEADING
           ? s_copy_text (text, TRK_DOC_MAX_HEADING * 4, TRK_DOC_MAX_HEADING, false, &copy)
           : s_copy_text (text, TRK_DOC_MAX_TEXT, 0, true, &copy);
    if (rc)
        return rc;
    size_t size = strlen (copy);
    if (size > TRK_DOC_MAX_TOTAL_TEXT - self->text_bytes)
        rc = TL_ETOOBIG;
    if (rc == 0)
        rc = s_append (self, (s_block_t) { kind, copy, NULL, NULL });
    if (rc) {
        free (copy);
        return rc;
    }
    self->text_bytes += size;
    return 0;
}


//  Adds a heading.

//  --------------------------------------------------------------------------
//  Sets the creation date.

int
trk_doc_set_date (trk_doc_t *self, const char *date)
{
    assert (self);
    size_t size = date ? strlen (date) : 0;
    if (size < 10 || size >= sizeof self->date)
        return TL_EINVAL;
    for (size_t i = 0; i < size; i++)
        if (!isdigit ((unsigned char) date [i]) && !strchr ("-:TZ+", date [i]))
            return TL_EINVAL;
    strcpy (self->date, date);
    return 0;
}

int
trk_doc_heading (trk_doc_t *self, const char *text)
{
    assert (self);
    return s_add_text (self, S_HEADING, text);
}


//  Adds a paragraph.

int
trk_doc_text (trk_doc_t *self, const char *text)
{
    assert (self);
    return s_add_text (self, S_TEXT, text);
}


//  Adds a chart, taking it.

int
trk_doc_chart (trk_doc_t *self, trk_chart_t **chart_p)
{
    assert (self);
    assert (chart_p && *chart_p);
    int rc = s_append (self, (s_block_t) { S_CHART, NULL, *chart_p, NULL });
    if (rc)
        trk_chart_destroy (chart_p);
    *chart_p = NULL;
    return rc;
}


//  Adds a mood board, taking it.

int
trk_doc_board (trk_doc_t *self, trk_board_t **board_p)
{
    assert (self);
    assert (board_p && *board_p);
    int rc = s_append (self, (s_block_t) { S_BOARD, NULL, NULL, *board_p });
    if (rc)
        trk_board_destroy (board_p);
    *board_p = NULL;
    return rc;
}


//  --------------------------------------------------------------------------
//  Layout

//  Draws the page's foot and ends the page. The font and colour are kept
//  for the text that goes on on the next page (and so that it breaks as
//  it did in the measuring pass).

static void
s_end_page (s_cursor_t *cursor)
{
    char foot [64];
    snprintf (foot, sizeof foot, "Page %d of %d", cursor->page, cursor->pages);
    cairo_save (cursor->cr);
    trk_chart_font (cursor->cr, S_FOOT_SIZE, false);
    trk_chart_set_rgb (cursor->cr, S_RGB_MUTED);
    trk_chart_text_show (cursor->cr, foot, S_MARGIN, S_FOOT_BASELINE, S_CONTENT_WIDTH, 0.5);
    cairo_restore (cursor->cr);
    cairo_show_page (cursor->cr);
}


//  Ends the page (when drawing) and starts a new one.

static void
s_new_page (s_cursor_t *cursor)
{
    if (cursor->draw)
        s_end_page (cursor);
    cursor->page++;
    cursor->y = S_MARGIN;
    if (cursor->page > TRK_DOC_MAX_PAGES && !cursor->rc)
        cursor->rc = TL_ETOOBIG;
}


//  Makes room for `height` points: a new page unless they fit (or the page
//  is still empty, when nothing would fit better on the next).

static void
s_need (s_cursor_t *cursor, double height)
{
    if (cursor->y + height > S_CONTENT_BOTTOM && cursor->y > S_MARGIN)
        s_new_page (cursor);
}


//  Emits one line of `size` bytes at `text` in the current font.

static void
s_line (s_cursor_t *cursor, const char *text, size_t size, double font_size, double line)
{
    s_need (cursor, line);
    if (cursor->draw && size) {
        memcpy (cursor->line, text, size);
        cursor->line [size] = 0;
        cairo_move_to (cursor->cr, S_MARGIN, cursor->y + font_size);
        cairo_show_text (cursor->cr, cursor->line);
    }
    cursor->y += line;
}


//  Flows text (valid UTF-8; "\n" breaks the line) across the content
//  width in the current font, one line at a time.

static void
s_flow (s_cursor_t *cursor, const char *text, double font_size, double line)
{
    cairo_t *cr = cursor->cr;
    while (cursor->rc == 0) {
        const char *newline = strchr (text, '\n');
        size_t size = newline? (size_t) (newline - text): strlen (text);
        if (size == 0)
            s_line (cursor, text, 0, font_size, line);      //  a blank line
        while (size > 0 && cursor->rc == 0) {
            size_t fit = trk_chart_text_fit (cr, text, size, S_CONTENT_WIDTH);
            size_t take = fit, skip = fit;
            if (fit < size) {
                //  Break at the last space that fits; a longer word is
                //  broken where it must, one character at least.
                size_t space = fit;
                while (space > 0 && text [space] != ' ')
                    space--;
                if (space > 0) {
                    take = space;
                    skip = space + 1;
                }
                else
                if (fit == 0) {
                    take = 1;
                    while (take < size && ((unsigned char) text [take] & 0xc0) == 0x80)
                        take++;
                    skip = take;
                }
            }
            while (take > 0 && text [take - 1] == ' ')
                take--;
            s_line (cursor, text, take, font_size, line);
            text += skip;
            size -= skip;
            while (size > 0 && *text == ' ') {
                text++;
                size--;
            }
        }
        if (!newline)
            break;
        text = newline + 1;
    }
}


//  Lays the whole document out, drawing when the cursor says so.

static void
s_layout (trk_doc_t *self, s_cursor_t *cursor)
{
    cairo_t *cr = cursor->cr;
    cursor->page = 1;
    cursor->y = S_MARGIN;
    cursor->rc = 0;
    if (self->title) {
        trk_chart_font (cr, S_TITLE_SIZE, true);
        trk_chart_set_rgb (cr, S_RGB_TEXT);
        s_flow (cursor, self->title, S_TITLE_SIZE, S_TITLE_LINE);
        cursor->y += 4;
        if (cursor->draw) {
            trk_chart_set_rgb (cr, S_RGB_RULE);
            cairo_set_line_width (cr, 0.75);
            cairo_move_to (cr, S_MARGIN, cursor->y);
            cairo_line_to (cr, S_MARGIN + S_CONTENT_WIDTH, cursor->y);
            cairo_stroke (cr);
        }
        cursor->y += 10;
    }
    for (size_t i = 0; i < self->nblocks && cursor->rc == 0; i++) {
        const s_block_t *block = &self->blocks [i];
        if (block->kind == S_HEADING) {
            //  Kept with two lines of what follows.
            if (cursor->y > S_MARGIN)
                cursor->y += S_HEADING_BEFORE;
            s_need (cursor, S_HEADING_LINE + S_HEADING_AFTER + 2 * S_TEXT_LINE);
            trk_chart_font (cr, S_HEADING_SIZE, true);
            trk_chart_set_rgb (cr, S_RGB_TEXT);
            s_flow (cursor, block->text, S_HEADING_SIZE, S_HEADING_LINE);
            cursor->y += S_HEADING_AFTER;
        }
        else
        if (block->kind == S_TEXT) {
            trk_chart_font (cr, S_TEXT_SIZE, false);
            trk_chart_set_rgb (cr, S_RGB_TEXT);
            s_flow (cursor, block->text, S_TEXT_SIZE, S_TEXT_LINE);
            cursor->y += S_BLOCK_AFTER;
        }
        else {
            double height = block->kind == S_CHART? S_CHART_HEIGHT: S_BOARD_HEIGHT;
            s_need (cursor, height);
            if (cursor->draw) {
                int rc = block->kind == S_CHART
                       ? trk_chart_draw (block->chart, cr, S_MARGIN, cursor->y,
                                         S_CONTENT_WIDTH, height)
                       : trk_board_draw (block->board, cr, S_MARGIN, cursor->y,
                                         S_CONTENT_WIDTH, height);
                if (rc && !cursor->rc)
                    cursor->rc = rc;
            }
            cursor->y += height + S_BLOCK_AFTER;
        }
    }
    if (cursor->draw && cursor->rc == 0)
        s_end_page (cursor);
}


//  Output into memory: a cairo write function over a capped tl_buf.

//  Renders the document as PDF.

int
trk_doc_render_pdf (trk_doc_t *self, unsigned char **data_p, size_t *size_p)
{
    assert (self);
    assert (data_p);
    assert (size_p);
    *data_p = NULL;
    *size_p = 0;
    trk_chart_sink_t sink = { tl_buf_new (TRK_DOC_MAX_OUTPUT), 0 };
    char *line = (char *) malloc (TRK_DOC_MAX_TEXT + 1);
    if (!sink.buf || !line) {
        tl_buf_destroy (&sink.buf);
        free (line);
        return TL_ENOMEM;
    }
    cairo_surface_t *surface = cairo_pdf_surface_create_for_stream (
        trk_chart_sink_write, &sink, S_PAGE_WIDTH, S_PAGE_HEIGHT);
    cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_CREATOR, "Tally");
    if (self->title)
        cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_TITLE, self->title);
    if (*self->date) {
        cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_CREATE_DATE, self->date);
        cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_MOD_DATE, self->date);
    }
    cairo_t *cr = cairo_create (surface);
    s_cursor_t cursor = { cr, line, false, 0, 0, 0, 0 };
    s_layout (self, &cursor);           //  count the pages
    if (cursor.rc == 0) {
        cursor.draw = true;
        cursor.pages = cursor.page;
        s_layout (self, &cursor);
        //  Both passes break the same way, or the feet would lie.
        assert (cursor.rc || cursor.page == cursor.pages);
    }
    int rc = cursor.rc;
    cairo_status_t status = cairo_status (cr);
    cairo_destroy (cr);
    cairo_surface_finish (surface);
    if (status == CAIRO_STATUS_SUCCESS)
        status = cairo_surface_status (surface);
    cairo_surface_destroy (surface);
    free (line);
    if (rc) {
        tl_buf_destroy (&sink.buf);
        return rc;
    }
    return trk_chart_sink_end (&sink, status, data_p, size_p);
}


//  --------------------------------------------------------------------------
//  Self-test

//  Runs `command` and returns its output (the caller frees it), or NULL.

static char *
s_test_run (const char *command)
{
    FILE *pipe = popen (command, "r");
    if (!pipe)
        return NULL;
    tl_buf_t *buf = tl_buf_new (4L * 1024 * 1024);
    assert (buf);
    char chunk [4096];
    size_t size;
    while ((size = fread (chunk, 1, sizeof chunk, pipe)) > 0)
        assert (tl_buf_append (buf, chunk, size) == 0);
    int status = pclose (pipe);
    char *output = status == 0? tl_buf_steal (buf, NULL): NULL;
    tl_buf_destroy (&buf);
    return output;
}

//  Returns page `page` (1, 2, ...) of pdftotext's output, where a form
//  feed ends each page, as a new string; NULL past the last page.

static char *
s_test_page (const char *text, int page)
{
    for (int i = 1; i < page && text; i++) {
        text = strchr (text, '\f');
        if (text)
            text++;
    }
    if (!text || !*text)
        return NULL;
    const char *end = strchr (text, '\f');
    return strndup (text, end? (size_t) (end - text): strlen (text));
}

//  Builds a report and reads it back with poppler's tools.

void
trk_doc_test (bool verbose)
{
    //  Titles, headings and paragraphs are checked; bounds hold.
    assert (trk_doc_new ("bad \xc3") == NULL);
    trk_doc_t *doc = trk_doc_new (NULL);
    assert (doc);
    assert (trk_doc_heading (doc, "\xed\xa0\x80") == TL_EINVAL);       //  a surrogate
    assert (trk_doc_text (doc, "ok \xff") == TL_EINVAL);
    char *big = (char *) malloc (TRK_DOC_MAX_TEXT + 2);
    assert (big);
    memset (big, 'a', TRK_DOC_MAX_TEXT + 1);
    big [TRK_DOC_MAX_TEXT + 1] = 0;
    assert (trk_doc_text (doc, big) == TL_ETOOBIG);
    assert (trk_doc_heading (doc, big + TRK_DOC_MAX_TEXT - TRK_DOC_MAX_HEADING) == TL_ETOOBIG);
    big [TRK_DOC_MAX_TEXT] = 0;
    size_t added = 0;
    while (trk_doc_text (doc, big) == 0)
        added++;
    assert (added == TRK_DOC_MAX_TOTAL_TEXT / TRK_DOC_MAX_TEXT);
    assert (trk_doc_text (doc, big) == TL_ETOOBIG);
    free (big);
    trk_doc_destroy (&doc);
    assert (doc == NULL);
    trk_doc_destroy (&doc);

    doc = trk_doc_new (NULL);
    assert (doc);
    for (int i = 0; i < TRK_DOC_MAX_BLOCKS; i++)
        assert (trk_doc_heading (doc, "h") == 0);
    assert (trk_doc_heading (doc, "h") == TL_ETOOBIG);
    trk_chart_t *extra = trk_chart_new (TRK_CHART_BAR, "extra");
    assert (extra);
    assert (trk_doc_chart (doc, &extra) == TL_ETOOBIG);
    assert (extra == NULL);                     //  taken, and destroyed
    trk_board_t *extra_board = trk_board_new (2026, NULL);
    assert (extra_board);
    assert (trk_doc_board (doc, &extra_board) == TL_ETOOBIG);
    assert (extra_board == NULL);
    //  500 headings fit on a bounded number of pages.
    unsigned char *pdf = NULL;
    size_t size = 0;
    assert (trk_doc_render_pdf (doc, &pdf, &size) == 0);
    free (pdf);
    trk_doc_destroy (&doc);

    //  A report: a heading, paragraphs enough for three pages or so, a
    //  word too long for a line, a chart and a board.
    doc = trk_doc_new ("Tally \xe2\x80\x94 March 2026");
    assert (doc);
    assert (trk_doc_heading (doc, "Your month in numbers") == 0);
    char paragraph [1024];
    int paragraphs = 30;
    for (int i = 0; i < paragraphs; i++) {
        snprintf (paragraph, sizeof paragraph,
                  "marker%02d: this month you logged your sleep on most days, and the "
                  "caf\xc3\xa9 visits kept going up. The na\xc3\xafve average says little; "
                  "the chart below shows the shape of it, day by day, with the quiet "
                  "weekends and the busy weeks in between.\nA second line, after a break.",
                  i);
        assert (trk_doc_text (doc, paragraph) == 0);
    }
    //  One paragraph long enough to run over a page break.
    char *longer = (char *) calloc (1, TRK_DOC_MAX_TEXT);
    assert (longer);
    for (int i = 0; i < 50; i++)
        strcat (longer, "On and on it goes, over quiet weekends and busy weeks alike. ");
    assert (trk_doc_text (doc, longer) == 0);
    free (longer);
    char word [2 * 700 + 1] = "";
    for (int i = 0; i < 700; i++)
        strcat (word, "\xc3\xa9");              //  é × 700: wider than a line
    assert (trk_doc_text (doc, word) == 0);
    assert (trk_doc_heading (doc, "Charts") == 0);
    trk_chart_t *chart = trk_chart_new (TRK_CHART_LINE, "Sleep per night");
    assert (chart);
    trk_chart_set_duration (chart, true);
    for (int i = 0; i < 31; i++)
        assert (trk_chart_add_point (chart, 1772323200000LL + i * 86400000LL,
                                     25200 + (i % 5) * 900) == 0);
    assert (trk_doc_chart (doc, &chart) == 0);
    assert (chart == NULL);
    trk_board_t *board = trk_board_new (2026, "Mood");
    assert (board);
    int moods [2] = { 2, 5 };
    assert (trk_board_set_day (board, 3, 1, moods, 2) == 0);
    assert (trk_doc_board (doc, &board) == 0);
    assert (board == NULL);
    assert (trk_doc_text (doc, "lastwordhere") == 0);

    assert (trk_doc_render_pdf (doc, &pdf, &size) == 0);
    assert (size > 1000 && memcmp (pdf, "%PDF-", 5) == 0);
    //  Rendering again gives a document as well.
    unsigned char *again = NULL;
    size_t again_size = 0;
    assert (trk_doc_render_pdf (doc, &again, &again_size) == 0);
    assert (memcmp (again, "%PDF-", 5) == 0);
    free (again);
    //  With a date set, the same document gives the same bytes
    assert (trk_doc_set_date (doc, "2026-12-01T00:00:00Z") == 0);
    assert (trk_doc_set_date (doc, "yesterday") == TL_EINVAL);
    assert (trk_doc_set_date (doc, NULL) == TL_EINVAL);
    unsigned char *one = NULL, *two = NULL;
    size_t one_size = 0, two_size = 0;
    assert (trk_doc_render_pdf (doc, &one, &one_size) == 0);
    sleep (1);                          //  a second later: the clock is not in it
    assert (trk_doc_render_pdf (doc, &two, &two_size) == 0);
    assert (one_size == two_size && memcmp (one, two, one_size) == 0);
    free (one);
    free (two);
    trk_doc_destroy (&doc);

    //  What poppler reads back: the text, the pages, the title.
    if (system ("command -v pdftotext >/dev/null 2>&1 && command -v pdfinfo >/dev/null 2>&1")) {
        printf ("(pdftotext/pdfinfo not found: PDF content not checked) ");
        free (pdf);
        trk_chart_release_fonts ();
        return;
    }
    char path [] = "/tmp/trk_doc_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    assert (write (fd, pdf, size) == (ssize_t) size);
    assert (close (fd) == 0);
    free (pdf);
    char command [128];
    snprintf (command, sizeof command, "pdfinfo '%s'", path);
    char *info = s_test_run (command);
    assert (info);
    const char *pages_line = strstr (info, "Pages:");
    assert (pages_line);
    int pages = atoi (pages_line + 6);
    assert (pages >= 2);
    assert (strstr (info, "Tally \xe2\x80\x94 March 2026"));
    snprintf (command, sizeof command, "pdftotext -enc UTF-8 '%s' -", path);
    char *text = s_test_run (command);
    assert (text);
    //  Every word within the margins; body text the same size everywhere,
    //  after page breaks too.
    snprintf (command, sizeof command, "pdftotext -bbox -enc UTF-8 '%s' -", path);
    char *boxes = s_test_run (command);
    assert (boxes);
    assert (unlink (path) == 0);
    size_t words = 0, weekends = 0;
    double body_height = 0;
    for (const char *s = strstr (boxes, "<word "); s; s = strstr (s + 1, "<word ")) {
        double x_min, y_min, x_max, y_max;
        assert (sscanf (s, "<word xMin=\"%lf\" yMin=\"%lf\" xMax=\"%lf\" yMax=\"%lf\"",
                        &x_min, &y_min, &x_max, &y_max) == 4);
        assert (x_min >= S_MARGIN - 1 && x_max <= S_PAGE_WIDTH - S_MARGIN + 1);
        assert (y_min >= S_MARGIN - 1 && y_max <= S_PAGE_HEIGHT - 20);
        if (strncmp (strchr (s, '>') + 1, "weekends", 8) == 0) {
            if (weekends++ == 0)
                body_height = y_max - y_min;
            assert (fabs (y_max - y_min - body_height) < 0.01);
        }
        words++;
    }
    assert (words > 1000 && weekends >= 80);
    free (boxes);
    if (verbose)
        printf ("\n  %d pages, %zu bytes of text\n", pages, strlen (text));
    assert (tl_json_utf8_valid (text, strlen (text)));

    //  Page 1: the title, the heading, the first paragraph, its foot.
    char *page = s_test_page (text, 1);
    assert (page);
    assert (strstr (page, "March 2026"));
    assert (strstr (page, "Your month in numbers"));
    assert (strstr (page, "marker00:"));
    assert (strstr (page, "caf\xc3\xa9") && strstr (page, "na\xc3\xafve"));
    char foot [64];
    snprintf (foot, sizeof foot, "Page 1 of %d", pages);
    assert (strstr (page, foot));
    assert (!strstr (page, "lastwordhere"));
    free (page);
    //  Page 2: paragraphs that flowed on, and not the first.
    page = s_test_page (text, 2);
    assert (page);
    assert (strstr (page, "marker") && !strstr (page, "marker00:"));
    assert (strstr (page, "weekends"));
    snprintf (foot, sizeof foot, "Page 2 of %d", pages);
    assert (strstr (page, foot));
    free (page);
    //  The last page: the end of the document.
    page = s_test_page (text, pages);
    assert (page);
    assert (strstr (page, "lastwordhere"));
    snprintf (foot, sizeof foot, "Page %d of %d", pages, pages);
    assert (strstr (page, foot));
    free (page);
    assert (s_test_page (text, pages + 1) == NULL);
    //  Every paragraph made it, in order; the long word is all there.
    const char *at = text;
    for (int i = 0; i < paragraphs; i++) {
        char marker [16];
        snprintf (marker, sizeof marker, "marker%02d:", i);
        at = strstr (at, marker);
        assert (at);
    }
    size_t accents = 0;
    for (const char *s = strstr (text, "\xc3\xa9\xc3\xa9\xc3\xa9"); s && *s; s++)
        if (memcmp (s, "\xc3\xa9", 2) == 0)
            accents++;
    assert (accents >= 700);
    //  The chart and the board drew their text too.
    assert (strstr (text, "Sleep per night") && strstr (text, "awful"));
    free (text);
    free (info);
    trk_chart_release_fonts ();
}
