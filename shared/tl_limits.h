//  tl_limits.h — every size, count and time bound of Tally in one place.
//  A limit that a client or peer can reach lives here and nowhere else, so
//  that a reviewer can see at a glance what the system will accept.
#ifndef TL_LIMITS_H_INCLUDED
#define TL_LIMITS_H_INCLUDED

//  ---------------------------------------------------------------------
//  Wire protocol (proto/PROTOCOL.md)
#define TL_PROTOCOL_VERSION        1
#define TL_MAX_FRAME_BYTES         (12L * 1024 * 1024)  //  ZMQ_MAXMSGSIZE
#define TL_MP_MAX_DEPTH            32       //  nesting of maps/arrays
#define TL_MP_MAX_ITEMS            (1L << 20)   //  objects in one frame
#define TL_MAX_ID_LEN              64       //  request ids, instance ids
#define TL_MAX_NAME_LEN            64       //  service and method names
#define TL_MAX_IDEM_KEY_LEN        255      //  Idempotency-Key header
#define TL_MAX_ROLES               16       //  roles in a caller
#define TL_MAX_HEADERS             32       //  headers in a reply
#define TL_MAX_HEADER_VALUE_LEN    4096
#define TL_MAX_PARAMS              32       //  path + query parameters

//  ---------------------------------------------------------------------
//  Mesh timing
#define TL_HEARTBEAT_MSEC          1000     //  each side, both ways
#define TL_HEARTBEAT_LIVENESS      3        //  missed beats before "dead"
#define TL_RECONNECT_MSEC          250      //  worker re-announce back-off
#define TL_DEFAULT_DEADLINE_MSEC   10000    //  when a route names none
#define TL_MAX_DEADLINE_MSEC       120000
#define TL_DRAIN_GRACE_MSEC        30000    //  SIGTERM: finish in-flight
#define TL_MESH_HWM                10000    //  ZMQ send/recv high water mark
#define TL_MAX_GATEWAYS            16       //  entries in TALLY_MESH

//  ---------------------------------------------------------------------
//  Broker (gateway)
#define TL_SERVICE_QUEUE_MAX       1024     //  waiting requests per service
#define TL_MESH_MAX_SERVICES       256      //  services a gateway tracks (declared or not)
#define TL_EVENT_MAX_SUBSCRIBERS   32       //  services one event is told to
#define TL_EVENT_MAX_ATTEMPTS      1000     //  deliveries tried (back-off capped: ~40 days)
#define TL_EVENT_DELIVERY_TIMEOUT_MS 10000  //  one delivery's deadline
#define TL_BROKER_MAX_PENDING      65536    //  requests alive in one broker
#define TL_RETRY_AFTER_SEC         1        //  on a full queue
#define TL_MAX_CAPACITY            256      //  an instance may announce

//  ---------------------------------------------------------------------
//  Worker runtime
#define TL_WORKER_THREADS_DEFAULT  8        //  see bench/README.md: threads hide mesh latency
#define TL_WORKER_THREADS_MAX      64
#define TL_WORKER_BACKLOG          256      //  requests queued locally

//  ---------------------------------------------------------------------
//  HTTP (gateway)
#define TL_HTTP_MAX_JSON_BODY      (1L * 1024 * 1024)    //  413 above
#define TL_HTTP_MAX_UPLOAD_BODY    (10L * 1024 * 1024)   //  upload routes
#define TL_HTTP_MAX_URL_LEN        4096
#define TL_HTTP_MAX_HEADER_BYTES   (16 * 1024)   //  MHD connection memory
#define TL_HTTP_MAX_CONNECTIONS    4096
#define TL_HTTP_MAX_PER_IP         512
#define TL_HTTP_IDLE_TIMEOUT_SEC   15       //  idle keep-alive, slow header
#define TL_HTTP_BODY_TIMEOUT_SEC   60       //  whole body must arrive by then
#define TL_HTTP_MAX_BUFFERED_BYTES (256L * 1024 * 1024)  //  bodies of all connections together; 503 past it
#define TL_HTTP_MAX_REQUEST_ID     128
#define TL_JSON_MAX_DEPTH          (TL_MP_MAX_DEPTH - 2)  //  room for the envelope
#define TL_LIST_LIMIT_DEFAULT      50
#define TL_LIST_LIMIT_MAX          500

//  ---------------------------------------------------------------------
//  Database
#define TL_DB_STATEMENT_TIMEOUT_MS 5000
#define TL_DB_TX_RETRIES           5        //  serialization / deadlock
#define TL_DB_MAX_PREPARED         256
#define TL_DB_MAX_TABLES           16       //  statement tables remembered as prepared
#define TL_IDEM_TTL_HOURS          24
#define TL_MAX_MIGRATIONS          1000
#define TL_DB_CONNECT_TIMEOUT_SEC  5        //  libpq connect_timeout default
#define TL_DB_MAX_PARAMS           64       //  parameters of one statement
#define TL_DB_MAX_IDENT            63       //  names, statement names: NAMEDATALEN-1
#define TL_DB_MAX_ERRMSG           512      //  tl_db_errmsg text, truncated
#define TL_DB_RETRY_BASE_MS        5        //  back-off: base * 2^n + jitter
#define TL_DB_MAX_MIGRATION_NAME   128      //  001_init.sql
#define TL_IDEM_PURGE_BATCH        10000    //  rows one tl_idem_purge deletes

//  ---------------------------------------------------------------------
//  Route table (gateway/gw_router.c over proto/services/*.json)
#define TL_HTTP_MAX_PATH_SEGMENTS  32       //  segments in a request path
#define TL_ROUTER_MAX_METHODS      1024     //  methods, all services together
#define TL_ROUTER_MAX_SERVICES     64       //  declaration files
#define TL_DECL_MAX_BYTES          (1L * 1024 * 1024)   //  one declaration
#define TL_DECL_MAX_FIELDS         64       //  `fields` of one method

//  ---------------------------------------------------------------------
//  Jobs (shared/tl_jobs.c)
#define TL_JOBS_LEASE_MS           60000    //  a claim holds a job this long
#define TL_JOBS_POLL_MS            1000     //  jobs thread: look even unwoken
#define TL_JOBS_BACKOFF_BASE_MS    1000     //  retry n waits base * 2^(n-1)
#define TL_JOBS_BACKOFF_CAP_MS     3600000  //  ... at most an hour (+ jitter)
#define TL_JOBS_MAX_ATTEMPTS_DEFAULT 20
#define TL_JOBS_MAX_ATTEMPTS_MAX   1000
#define TL_JOBS_MAX_KIND_LEN       64       //  kinds and schedule names
#define TL_JOBS_MAX_KEY_LEN        255      //  unique keys
#define TL_JOBS_MAX_PAYLOAD        (1L * 1024 * 1024)
#define TL_JOBS_MAX_ERROR_LEN      1024     //  last_error kept
#define TL_JOBS_MAX_HANDLERS       64       //  job kinds of one service
#define TL_JOBS_MAX_SCHEDULES      64
#define TL_JOBS_CLAIM_MAX          100      //  jobs one claim takes
#define TL_JOBS_CLAIM_BATCH        8        //  jobs thread: one claim, then run each
#define TL_JOBS_RUN_DUE_MAX        1000     //  jobs one jobs.run_due runs
#define TL_JOBS_DONE_TTL_HOURS     (7 * 24) //  done jobs without a key
#define TL_JOBS_PURGE_BATCH        10000

//  ---------------------------------------------------------------------
//  User-typed values (tl_valid)
#define TL_MAX_EMAIL_LEN           254      //  RFC 5321 path limit
#define TL_MAX_EMAIL_LOCAL_LEN     64       //  RFC 5321 4.5.3.1.1
#define TL_USERNAME_MIN            3
#define TL_USERNAME_MAX            32
#define TL_MAX_TIMEZONE_LEN        64       //  "America/Argentina/ComodRivadavia" is 32
#define TL_MAX_URL_LEN             2048     //  webhook and SMTP URLs

//  =====================================================================
//  Mailer service (services/mailer)

//  ---------------------------------------------------------------------
//  Messages (mail_mime)
#define MAIL_MAX_ADDRESS_LEN        TL_MAX_EMAIL_LEN
#define MAIL_MAX_RECIPIENTS         50       //  To: addresses of one message
#define MAIL_MAX_DISPLAY_NAME_LEN   128      //  bytes of the From: name
#define MAIL_MAX_SUBJECT_LEN        512      //  bytes of UTF-8, before encoding
#define MAIL_MAX_BODY_BYTES         (1L * 1024 * 1024)   //  text or html part
#define MAIL_MAX_ATTACHMENTS        64       //  a report: a chart per tracker (50) and boards
#define MAIL_MAX_ATTACHMENT_BYTES   (8L * 1024 * 1024)   //  one attachment
#define MAIL_MAX_ATTACHMENT_NAME    128      //  bytes of a file name
#define MAIL_MAX_CONTENT_TYPE_LEN   127      //  "type/subtype"
#define MAIL_MAX_MESSAGE_BYTES      (16L * 1024 * 1024)  //  a whole built message
#define MAIL_MAX_OUTBOX_ID_LEN      TL_MAX_ID_LEN        //  Message-ID local part

//  ---------------------------------------------------------------------
//  SMTP delivery (mail_smtp)
#define MAIL_SMTP_CONNECT_TIMEOUT_SEC  10
#define MAIL_SMTP_TIMEOUT_SEC          60    //  the whole conversation
#define MAIL_MAX_URL_LEN               TL_MAX_URL_LEN  //  SMTP and webhook URLs

//  ---------------------------------------------------------------------
//  Spool folder (mail_spool)
#define MAIL_SPOOL_MAX_NAME_LEN     (MAIL_MAX_OUTBOX_ID_LEN + 16)  //  id@host

//  ---------------------------------------------------------------------
//  Templates (mail_template)
#define MAIL_TEMPLATE_MAX_VARS      16       //  name/value pairs in one render
#define MAIL_TEMPLATE_MAX_VAR_NAME  32       //  {{name}}
#define MAIL_TEMPLATE_MAX_VALUE     4096     //  bytes of one value
#define MAIL_TEMPLATE_MAX_OUTPUT    (256L * 1024)  //  one rendered part

//  ---------------------------------------------------------------------
//  Reminder webhooks (mail_webhook)
#define MAIL_WEBHOOK_CONNECT_TIMEOUT_SEC  5
#define MAIL_WEBHOOK_TIMEOUT_SEC          15
#define MAIL_WEBHOOK_MAX_BODY             (64L * 1024)   //  JSON we send
#define MAIL_WEBHOOK_MAX_REPLY            (64L * 1024)   //  reply bytes read, then hang up
#define MAIL_WEBHOOK_MAX_REPLY_QUOTE      200            //  reply bytes kept for errbuf

//  =====================================================================
//  Tracker service (services/tracker)

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

#endif
