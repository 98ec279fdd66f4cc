//  an_report_doc.h — the PDF of a store report (GET
//  /stores/reports/{id}/report.pdf): a title with the report's "now", the
//  totals of every window, a bar chart and a table of the AN_REPORT_TOP
//  stores with most downtime in the last week, drawn with cairo on one A4
//  page. Stores are added one at a time; it keeps only the totals and the
//  top stores, never every row.
#ifndef AN_REPORT_DOC_H_INCLUDED
#define AN_REPORT_DOC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "an_report.h"

typedef struct _an_report_doc_t an_report_doc_t;

//  Creates an empty summary. Returns NULL on allocation failure.
an_report_doc_t *an_report_doc_new (void);

//  Destroys it and nulls the caller's reference. Safe on NULL.
void an_report_doc_destroy (an_report_doc_t **self_p);

//  Adds one store's figures.
void an_report_doc_add (an_report_doc_t *self, int64_t store_id,
                        const an_report_figures_t *figures);

//  How many stores were added.
size_t an_report_doc_stores (an_report_doc_t *self);

//  Renders the PDF of a report whose "now" is `now` (RFC 3339 text, "" when
//  there was no poll): returns 0 with *data_p (malloc'd, the caller's) and
//  *size_p, TL_EINVAL for a `now` over 40 bytes, or TL_ENOMEM / TL_EIO,
//  with *data_p NULL. The same figures and now give the same bytes (the
//  PDF's dates are the report's now).
int an_report_doc_render (an_report_doc_t *self, const char *now, unsigned char **data_p,
                          size_t *size_p);

//  Frees cairo's and fontconfig's font caches (at the program's end, and
//  after the self-test, for the leak checker). FcFini is looked up at run
//  time: fontconfig is cairo's dependency, not ours to link.
void an_report_doc_release_fonts (void);

//  Self-test, run by ctest.
void an_report_doc_test (bool verbose);

#endif
