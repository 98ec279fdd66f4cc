//  an_store_limits.h — the limits of store monitoring (issue #15): sizes of
//  the CSV bodies and their fields, how many bad lines a 422 lists, how
//  many stores and polls one report reads, how long reports are kept.
//  (The platform's limits are in shared/tl_limits.h.)
#ifndef AN_STORE_LIMITS_H_INCLUDED
#define AN_STORE_LIMITS_H_INCLUDED

#include "tl_limits.h"

//  The CSV reader (an_store_csv)
#define AN_CSV_MAX_FIELD            255     //  bytes of one field
#define AN_CSV_MAX_FIELDS           8       //  fields of one record
#define AN_CSV_MAX_BYTES            (100L * 1024 * 1024)    //  a body
#define AN_CSV_MAX_ROWS             4000000L                //  rows of a body

//  A load: bad lines a 422 lists (then only how many more), and the COPY
//  buffer sent to PostgreSQL at a time
#define AN_LOAD_MAX_ERRORS          100
#define AN_LOAD_COPY_CHUNK          (256 * 1024)
#define AN_LOAD_WORK_MEM            "128MB" //  the merge's sort of a load's rows
#define AN_FORGET_TIMEOUT           "300s"  //  a deleted user's rows, millions of polls

//  Polled sources (PUT /stores/source): bytes of a URL, the time one file's
//  GET and load may take, how often each is polled, the attempts of a poll
//  the database failed (a poll enqueues the next: the chain ends with its
//  last attempt, so the most jobs allow, hourly past the back-off's cap
//  for ~41 days, not 5 that a 15 s database restart used up), and when to
//  ask again while a poll runs
#define AN_SOURCE_MAX_URL           2048
#define AN_SOURCE_TIMEOUT_MS        300000
#define AN_SOURCE_INTERVAL_S        3600
#define AN_SOURCE_ATTEMPTS          TL_JOBS_MAX_ATTEMPTS_MAX
#define AN_SOURCE_BUSY_RETRY_S      30      //  the Retry-After of a 409 during a poll

//  Time zones: bytes of a name, of a TZif file, transitions kept, and the
//  last year a footer rule is expanded to
#define AN_TZ_MAX_NAME              64
#define AN_TZ_MAX_FILE              (256 * 1024)
#define AN_TZ_MAX_TRANSITIONS       2048
#define AN_TZ_LAST_YEAR             2200
#define AN_TZ_CACHE                 1024    //  zones one load or report keeps

//  A report: hour rows of one store, polls of one store in its week,
//  stores fetched at a time, stores in a report, and its files' sizes
#define AN_REPORT_MAX_HOURS         1000
#define AN_REPORT_MAX_POLLS         1000000
#define AN_REPORT_FETCH             500
#define AN_REPORT_MAX_STORES        100000
#define AN_REPORT_MAX_CSV           (10L * 1024 * 1024)   //  fits a frame
#define AN_REPORT_TOP               20      //  stores the PDF lists
#define AN_REPORT_KEEP_DAYS         30
#define AN_REPORT_MAX_RUNNING       3       //  a user's reports running or queued: 429 past
#define AN_REPORT_RETRY_AFTER_S     5       //  the 429's Retry-After
#define AN_REPORT_PURGE_BATCH       1000

#endif
