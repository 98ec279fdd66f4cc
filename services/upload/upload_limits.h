//  upload_limits.h — every bound of the upload service in one place (the
//  platform's own, like the 10 MiB upload body, are in shared/tl_limits.h).
#ifndef UPLOAD_LIMITS_H_INCLUDED
#define UPLOAD_LIMITS_H_INCLUDED

#include "tl_limits.h"

//  An image as it comes in: the gateway's upload body bound, whatever the
//  way it is sent (a data URL's JSON is held to the same body, so its image
//  is at most 3/4 of it).
#define UP_MAX_BYTES            TL_HTTP_MAX_UPLOAD_BODY
#define UP_MAX_PIXELS           40000000LL      //  40 megapixels: 422 past it
#define UP_MAX_SIDE             65535           //  any side, any format
//  What the service keeps and serves: a stored blob (an original cleaned,
//  or a variant) travels back in one frame, so it must leave room for the
//  envelope.
#define UP_MAX_STORED           (TL_MAX_FRAME_BYTES - 64L * 1024)
#define UP_MAX_MIME_LEN         127             //  a declared content type
#define UP_MAX_DATA_URL_HEAD    160             //  "data:<type>;base64,"

//  multipart/form-data
#define UP_MULTIPART_MAX_PARTS  16
#define UP_MULTIPART_MAX_HEAD   8192            //  one part's header block
#define UP_MULTIPART_MAX_BOUNDARY 70            //  RFC 2046 5.1.1

//  Quota per user (defaults; TALLY_UPLOAD_QUOTA_BYTES and
//  TALLY_UPLOAD_PER_HOUR change them within these bounds)
#define UP_QUOTA_BYTES_DEFAULT  (500LL * 1024 * 1024)
#define UP_QUOTA_BYTES_MAX      (1LL << 40)
#define UP_PER_HOUR_DEFAULT     100
#define UP_PER_HOUR_MAX         100000

//  Storage
#define UP_MAX_KEY_LEN          128             //  "<sha256>.<variant>"
#define UP_MAX_PATH_LEN         1024            //  a local file's path
#define UP_S3_TIMEOUT_MS        20000           //  one S3 request
#define UP_S3_MAX_URL_LEN       1024

//  Lists and jobs
#define UP_GC_BATCH             500             //  blobs one daily run removes per pass
#define UP_ORPHAN_AGE_HOURS     24              //  unreferenced uploads older than this go
#define UP_MAX_UNREF_IDS        1000            //  ref_ids of one upload.unref (an event's
                                                //  speakers: EV_MAX_PARTS_PER_EVENT)
#define UP_MAX_REF_KINDS        4               //  event_background, avatar, speaker_photo, sponsor_logo

#endif
