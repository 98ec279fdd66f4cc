//  trk_limits.h — the tracker service's limits: sizes of values, files
//  and drawings, and the quotas of how much one user may keep and run at
//  once. (The platform's are in shared/tl_limits.h.) Each quota is counted
//  under the lock that serialises the writes it bounds, so that concurrent
//  requests, on any instance, cannot pass it together.
#ifndef TRK_LIMITS_H_INCLUDED
#define TRK_LIMITS_H_INCLUDED

#include "tl_limits.h"

//  ---------------------------------------------------------------------
//  Charts (trk_chart)
#define TRK_CHART_MIN_WIDTH         200      //  pixels of a PNG or SVG chart
#define TRK_CHART_MAX_WIDTH         2000
#define TRK_CHART_MIN_HEIGHT        150
#define TRK_CHART_MAX_HEIGHT        1500
#define TRK_CHART_DEFAULT_WIDTH     800
#define TRK_CHART_DEFAULT_HEIGHT    400
#define TRK_CHART_MAX_POINTS        100000   //  points of a line chart
#define TRK_CHART_MAX_BARS          64       //  bars of a bar chart
#define TRK_CHART_MAX_TITLE         100      //  Unicode characters of a title
#define TRK_CHART_MAX_LABEL         100      //  ... of a bar's label
#define TRK_CHART_MAX_UNIT          32       //  ... of the y axis unit
#define TRK_CHART_MAX_VALUE         1e15     //  magnitude of a point or bar value
#define TRK_CHART_MIN_TIME_MS       (-2208988800000LL)  //  1900-01-01T00:00Z
#define TRK_CHART_MAX_TIME_MS       253402300799999LL   //  9999-12-31T23:59:59.999Z
#define TRK_CHART_MAX_OUTPUT        (16L * 1024 * 1024)  //  PNG or SVG bytes

//  ---------------------------------------------------------------------
//  Mood boards (trk_board)
#define TRK_BOARD_MIN_YEAR          1900
#define TRK_BOARD_MAX_YEAR          9999
#define TRK_BOARD_MAX_TITLE         100      //  Unicode characters of a title
#define TRK_BOARD_MAX_MOODS_PER_DAY 2
#define TRK_BOARD_PNG_WIDTH         960      //  pixels of board.png
#define TRK_BOARD_PNG_HEIGHT        480

//  ---------------------------------------------------------------------
//  PDF documents (trk_doc)
#define TRK_DOC_MAX_BLOCKS          512      //  headings, paragraphs, charts, boards
#define TRK_DOC_MAX_TITLE           200      //  Unicode characters of the title
#define TRK_DOC_MAX_HEADING         200      //  ... of a heading
#define TRK_DOC_MAX_TEXT            (16L * 1024)    //  bytes of one paragraph
#define TRK_DOC_MAX_TOTAL_TEXT      (256L * 1024)   //  bytes of all text together
#define TRK_DOC_MAX_PAGES           500
#define TRK_DOC_MAX_OUTPUT          (32L * 1024 * 1024)  //  PDF bytes

//  ---------------------------------------------------------------------
//  Tracker service: CSV and log values (trk_csv, trk_value)
#define TRK_CSV_MAX_BYTES           (10L * 1024 * 1024)  //  an import body
#define TRK_CSV_MAX_ROWS            100000   //  log rows of an import
#define TRK_CSV_MAX_RECORDS         (TRK_CSV_MAX_ROWS + 1)  //  ... and its header
#define TRK_CSV_MAX_FIELD           8192     //  bytes of one field
#define TRK_CSV_MAX_FIELDS          16       //  fields of one record
#define TRK_VALUE_MAX_ABS           1e15     //  magnitude of a numerical value
#define TRK_DURATION_MAX_SEC        316224000   //  ten years of 366 days
#define TRK_VALUE_MAX_NUMBER_TEXT   64       //  bytes of a number written as text
#define TRK_MAX_CHOICES             50       //  choices of a multiple_choice tracker
#define TRK_CHOICE_MAX_LEN          100      //  bytes of one choice

//  ---------------------------------------------------------------------
//  Tracker service: reminders and monthly reports (tracker_reports.c)
#define TRK_PLAN_BATCH              500      //  users one tracker.plan job plans (a users.lookup)
#define TRK_REMIND_MAX_LATE_SEC     (2 * 3600)   //  a reminder later than this is dropped
#define TRK_REPORT_MAX_TRACKERS     50       //  trackers in one report (the oldest first)
#define TRK_REPORT_MAX_BYTES        (8L * 1024 * 1024)  //  an HTML or PDF report; a report mail's files
#define TRK_REPORT_MIN_YEAR         1970     //  months a report can be asked for
#define TRK_REPORT_MAX_YEAR         9998
#define TRK_REPORT_CALL_TIMEOUT_MS  30000    //  a job's call to auth or the mailer
//  What the mailer's mail.send takes (its README: 64 files, 1 MiB a part)
#define TRK_REPORT_MAX_FILES        64       //  files of a report mail
#define TRK_REPORT_MAX_PART_BYTES   (1L * 1024 * 1024)   //  its text or html part

//  ---------------------------------------------------------------------
//  Tracker service: CSV export and import (tracker_csv)
#define TRK_CSV_MAX_EXPORT_BYTES    (11L * 1024 * 1024)  //  413 above; under TL_MAX_FRAME_BYTES
#define TRK_CSV_EXPORT_PAGE         1000     //  logs (or trackers) read per statement
#define TRK_CSV_MAX_ERRORS          1000     //  bad lines an import's 422 lists ("more": the rest)
#define TRK_CSV_BATCH_ROWS          1000     //  rows of one INSERT of an import
#define TRK_CSV_BATCH_BYTES         (1L * 1024 * 1024)   //  ... or this much array text

//  ---------------------------------------------------------------------
//  Tracker service: trackers and logs (the schema's CHECKs agree)
#define TRK_NAME_MAX                100      //  characters of a tracker's name
#define TRK_DESCRIPTION_MAX         2000     //  ... of its description
#define TRK_UNIT_MAX                32       //  ... of its unit
#define TRK_NOTE_MAX                2000     //  characters of a log's note
#define TRK_LOG_FUTURE_SLACK_MS     (24LL * 3600 * 1000)  //  a log's time may be this far ahead

//  ---------------------------------------------------------------------
//  Quotas

//  Trackers of one user (422 too_many_trackers past it); counted under a
//  transaction advisory lock on the owner (tracker_trackers.c).
#define TRK_MAX_TRACKERS_PER_USER   200

//  Logs of one tracker (422 too_many_logs past it): a full CSV import
//  (TRK_CSV_MAX_ROWS) fits an empty tracker. Counted under the tracker's
//  row lock, which every log write takes.
#define TRK_MAX_LOGS_PER_TRACKER    100000

//  Expensive requests (stats, charts, board images, reports, CSV exports
//  and imports) one user runs at once across every instance: 429 past it,
//  with Retry-After in seconds. Each is a PostgreSQL session advisory lock
//  on one of this many slots of the user (tracker_expensive).
#define TRK_MAX_EXPENSIVE_PER_USER  2
#define TRK_EXPENSIVE_RETRY_AFTER_SEC 1

#endif
