//  trk_doc.h — a small document builder for the monthly report: headings,
//  paragraphs, charts and mood boards, flowed onto A4 pages of a PDF.
//  Content is kept as a list of blocks and laid out when the PDF is
//  rendered: the title heads page 1, paragraphs wrap at word boundaries
//  (a word wider than the page is broken, never inside a character), a
//  block that does not fit goes on to a new page, a heading is kept with
//  what follows it, and each page ends with "Page N of M". Limits:
//  TRK_DOC_* in tl_limits.h.
#ifndef TRK_DOC_H_INCLUDED
#define TRK_DOC_H_INCLUDED

#include <stdbool.h>
#include "trk_limits.h"
#include <stddef.h>

#include "trk_board.h"
#include "trk_chart.h"

typedef struct _trk_doc_t trk_doc_t;

//  Creates an empty document titled `title` (NULL for none): UTF-8 of at
//  most TRK_DOC_MAX_TITLE characters, shown atop page 1 and stored as the
//  PDF's title. Returns NULL for a bad title or on allocation failure.
trk_doc_t *trk_doc_new (const char *title);

//  Destroys the document, with the charts and boards it holds, and nulls
//  the caller's reference. Safe on NULL.
void trk_doc_destroy (trk_doc_t **self_p);

//  Adds a heading: UTF-8 of at most TRK_DOC_MAX_HEADING characters, one
//  line (line breaks become spaces). Returns 0; TL_EINVAL for bad UTF-8;
//  TL_ETOOBIG for a long heading, past TRK_DOC_MAX_BLOCKS blocks or
//  TRK_DOC_MAX_TOTAL_TEXT bytes of text; TL_ENOMEM.
//  Sets the PDF's creation (and modification) date, ISO 8601 such as
//  "2026-12-01T00:00:00Z": the same document then always gives the same
//  bytes (and ETag). Without it the PDF carries the time it was rendered.
//  Returns 0 or TL_EINVAL.
int trk_doc_set_date (trk_doc_t *self, const char *date);

int trk_doc_heading (trk_doc_t *self, const char *text);

//  Adds a paragraph: UTF-8 of at most TRK_DOC_MAX_TEXT bytes; "\n" breaks
//  the line, other control characters count as spaces. Returns as
//  trk_doc_heading.
int trk_doc_text (trk_doc_t *self, const char *text);

//  Adds a chart, drawn across the page. Takes the chart whatever happens:
//  *chart_p is nulled, and the chart destroyed with the document (or at
//  once on failure). Returns 0, TL_ETOOBIG past TRK_DOC_MAX_BLOCKS, or
//  TL_ENOMEM.
int trk_doc_chart (trk_doc_t *self, trk_chart_t **chart_p);

//  Adds a mood board, drawn across the page; takes it as trk_doc_chart.
int trk_doc_board (trk_doc_t *self, trk_board_t **board_p);

//  Lays the document out and renders it as PDF. May be called again. On
//  success returns 0 and the PDF at *data_p (malloc'd: the caller frees
//  it), its size at *size_p. Returns TL_ETOOBIG past TRK_DOC_MAX_PAGES
//  pages or TRK_DOC_MAX_OUTPUT bytes, TL_ENOMEM, or TL_EIO, leaving
//  *data_p NULL.
int trk_doc_render_pdf (trk_doc_t *self, unsigned char **data_p, size_t *size_p);

//  Self-test, run by ctest.
void trk_doc_test (bool verbose);

#endif
