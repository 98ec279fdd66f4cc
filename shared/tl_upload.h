//  tl_upload.h — a service's side of the upload service's references
//  (PROTOCOL: upload.ref / upload.unref in proto/services/upload.json):
//  what a service shows of a user's uploads (an avatar, an event's
//  background, a speaker's photo) is held by the upload service while it is
//  shown, so that the upload is neither deleted nor collected meanwhile.
//  Every service that shows an upload uses these, never its own copy.
#ifndef TL_UPLOAD_H_INCLUDED
#define TL_UPLOAD_H_INCLUDED

#include <stdbool.h>

#include "tl_call.h"
#include "tl_limits.h"

//  Reads the body's image source, one of {upload_id} (one of the caller's
//  uploads) or {data_url} (an image to upload on the spot, within the JSON
//  body's bound), into *upload_id or *data_url (the caller's to free; the
//  other stays NULL). Answers 400 and returns false when neither or both
//  are there, or either is not a string within its bound.
bool tl_upload_source (tl_call_t *call, char **upload_id, char **data_url);

//  On the caller's behalf, makes (kind, ref_id) show the caller's
//  `upload_id` or a new upload of `data_url` (upload.ref), or, both NULL,
//  show nothing (upload.unref). With `url`, the upload's `variant` URL
//  (the original's when `variant` is NULL) goes there. Returns true;
//  otherwise the call is answered — the upload service's 4xx passed on
//  (404 when the upload is not the caller's, 413, 415, 422), 503 when it
//  does not answer — and returns false.
bool tl_upload_hold (tl_call_t *call, const char *kind, const char *ref_id,
                     const char *upload_id, const char *data_url, const char *variant,
                     char url [TL_MAX_URL_LEN + 1]);

//  Self-test.
void tl_upload_test (bool verbose);

#endif
