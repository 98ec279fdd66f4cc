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
#define TL_BROKER_MAX_PENDING      65536    //  requests alive in one broker
#define TL_RETRY_AFTER_SEC         1        //  on a full queue
#define TL_MAX_CAPACITY            256      //  an instance may announce

//  ---------------------------------------------------------------------
//  Worker runtime
#define TL_WORKER_THREADS_DEFAULT  8        //  see bench/README.md: threads hide mesh latency
#define TL_WORKER_THREADS_MAX      64

//  ---------------------------------------------------------------------
//  HTTP (gateway)
#define TL_HTTP_MAX_JSON_BODY      (1L * 1024 * 1024)    //  413 above
#define TL_HTTP_MAX_UPLOAD_BODY    (10L * 1024 * 1024)   //  upload routes
#define TL_HTTP_MAX_URL_LEN        4096
#define TL_HTTP_MAX_HEADER_BYTES   (16 * 1024)   //  MHD connection memory (× 2) of a request
#define TL_HTTP_STREAM_POOL_BYTES  4096     //  MHD connection memory of a stream whose request
                                            //  head is small (gw_http: its own daemon, same port)
#define TL_HTTP_STREAM_HEAD_BYTES  2048     //  ... such a head: at most this (≤ half the pool),
#define TL_HTTP_STREAM_REPLY_ROOM  1024     //  ... leaving this for the reply's head and chunks
#define TL_HTTP_MAX_CONNECTIONS    20000    //  TL_STREAMS_MAX held streams and requests besides
                                            //  (the gateway's open-files limit must allow it)
#define TL_HTTP_MAX_PER_IP         512      //  none behind a trusted proxy (TALLY_TRUST_PROXY):
                                            //  every client comes from its address
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
#define TL_DB_MAX_COMMIT_HOOKS     8        //  tl_db_after_commit calls in one transaction
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
//  Durable events (tl_event)
#define TL_EVENT_MAX_SUBSCRIBERS   32       //  services one event is told to
#define TL_EVENT_MAX_ATTEMPTS      1000     //  deliveries tried (back-off capped: ~40 days)
#define TL_EVENT_DELIVERY_TIMEOUT_MS 10000  //  one delivery's deadline
#define TL_SESSION_CACHE_MAX       65536    //  sessions a gateway keeps checked (gw_sessions)
#define TL_SESSION_CACHE_TTL_MS    60000    //  ... each at most this long
#define TL_BROADCAST_TIMEOUT_MS    1000     //  a committed write's broadcast waits this for every gateway
#define TL_BROADCAST_MAX_BODY      16384    //  a tl_call_broadcast body (a pushed notification
                                            //  of 2000 characters and a 2000-byte URL fits)

//  ---------------------------------------------------------------------
//  Server-Sent Events held by a gateway (gw_streams)
#define TL_STREAMS_MAX             16384    //  open streams on one gateway (10 000 measured: bench/notify.sh)
#define TL_STREAMS_PER_USER        32       //  open streams of one user on one gateway
#define TL_STREAM_BACKLOG_BYTES    (64 * 1024)   //  unsent bytes of one stream: a client that
                                                 //  does not read is cut past this
#define TL_STREAM_HELD_MAX         256      //  live events held while a stream catches up
#define TL_STREAM_HEARTBEAT_MS     15000    //  a comment line on every idle stream
#define TL_STREAM_CATCHUP_MAX      1000     //  notifications sent on reconnect (Last-Event-ID)

//  ---------------------------------------------------------------------
//  User-typed values (tl_valid)
#define TL_MAX_EMAIL_LEN           254      //  RFC 5321 path limit
#define TL_MAX_EMAIL_LOCAL_LEN     64       //  RFC 5321 4.5.3.1.1
#define TL_USERNAME_MIN            3
#define TL_USERNAME_MAX            32
#define TL_MAX_TIMEZONE_LEN        64       //  "America/Argentina/ComodRivadavia" is 32
#define TL_MAX_URL_LEN             2048     //  webhook and SMTP URLs

#endif
