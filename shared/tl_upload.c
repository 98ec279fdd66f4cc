//  tl_upload.c — a service's side of the upload service's references:
//  reading an image source from a body, and asking upload.ref /
//  upload.unref on the caller's behalf (see tl_upload.h).
#include "tl_upload.h"
#include "tl_mp.h"
#include "tl_private.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
tl_upload_source (tl_call_t *call, char **upload_id, char **data_url)
{
    *upload_id = *data_url = NULL;
    if (!tl_call_text (call, NULL, "upload_id", NULL, TL_MAX_ID_LEN, upload_id, NULL)
    ||  !tl_call_text (call, NULL, "data_url", NULL, TL_HTTP_MAX_JSON_BODY, data_url, NULL))
        goto refused;
    if (!*upload_id != !*data_url)
        return true;
    tl_call_field_error (call, 400, "invalid", *upload_id ? "data_url" : "upload_id",
                         "send upload_id or data_url, one of them");
refused:
    free (*upload_id);
    free (*data_url);
    *upload_id = *data_url = NULL;
    return false;
}

bool
tl_upload_hold (tl_call_t *call, const char *kind, const char *ref_id,
                const char *upload_id, const char *data_url, const char *variant,
                char url [TL_MAX_URL_LEN + 1])
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    bool hold = upload_id || data_url;
    msgpack_pack_map (&pk, 2 + (hold ? 1 : 0) + (hold && variant ? 1 : 0));
    tl_mp_pack_kv (&pk, "kind", kind);
    tl_mp_pack_kv (&pk, "ref_id", ref_id);
    if (hold)
        tl_mp_pack_kv (&pk, upload_id ? "upload_id" : "data_url", upload_id ? upload_id : data_url);
    if (hold && variant)
        tl_mp_pack_kv (&pk, "variant", variant);
    tl_msg_t *reply = tl_call_ask (call, "upload", hold ? "upload.ref" : "upload.unref",
                                   body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    if (!reply)
        return false;
    bool ok = true;
    if (url && !tl_mp_copy (tl_mp_get (tl_msg_body (reply), "url"), url, TL_MAX_URL_LEN + 1)) {
        tl_call_error (call, 503, "unavailable", "the upload service sent no URL");
        ok = false;
    }
    tl_msg_destroy (&reply);
    return ok;
}

//  A call of `body` (JSON-like pairs packed by the test), for the self-test.
static tl_call_t *
s_test_call (const char *const *pairs, size_t count)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    tl_mp_pack_pairs (&body, pairs, count);
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (request, TL_MSG_ID, "1");
    tl_msg_set_str (request, TL_MSG_METHOD, "x.set");
    int rc = tl_msg_set_body (request, body.data, body.size);
    assert (rc == 0);
    msgpack_sbuffer_destroy (&body);
    tl_call_t *call = tl_call_new (&request, NULL);
    assert (call);
    return call;
}

static int
s_test_status (tl_call_t *call)
{
    tl_msg_t *reply = tl_call_take_reply (call);
    int status = tl_msg_status (reply);
    tl_msg_destroy (&reply);
    return status;
}

void
tl_upload_test (bool verbose)
{
    char *upload_id, *data_url;
    //  One of the two
    tl_call_t *call = s_test_call ((const char *[]) { "upload_id", "u1" }, 1);
    assert (tl_upload_source (call, &upload_id, &data_url));
    assert (strcmp (upload_id, "u1") == 0 && !data_url);
    free (upload_id);
    tl_call_destroy (&call);
    call = s_test_call ((const char *[]) { "data_url", "data:image/png;base64,AA==" }, 1);
    assert (tl_upload_source (call, &upload_id, &data_url));
    assert (!upload_id && strncmp (data_url, "data:", 5) == 0);
    free (data_url);
    tl_call_destroy (&call);
    //  Both, neither: 400, nothing left to free
    call = s_test_call ((const char *[]) { "upload_id", "u1", "data_url", "d" }, 2);
    assert (!tl_upload_source (call, &upload_id, &data_url) && !upload_id && !data_url);
    assert (s_test_status (call) == 400);
    tl_call_destroy (&call);
    call = s_test_call ((const char *[]) { "other", "x" }, 1);
    assert (!tl_upload_source (call, &upload_id, &data_url) && !upload_id && !data_url);
    assert (s_test_status (call) == 400);
    tl_call_destroy (&call);
    //  An id past its bound
    char id [TL_MAX_ID_LEN + 2];
    memset (id, 'a', sizeof id - 1);
    id [sizeof id - 1] = 0;
    call = s_test_call ((const char *[]) { "upload_id", id }, 1);
    assert (!tl_upload_source (call, &upload_id, &data_url) && !upload_id && !data_url);
    assert (s_test_status (call) == 400);
    //  Outside a running service nobody answers: 503, false
    char url [TL_MAX_URL_LEN + 1];
    assert (!tl_upload_hold (call, "avatar", "u", "id", NULL, "avatar", url));
    assert (s_test_status (call) == 503);
    assert (!tl_upload_hold (call, "avatar", "u", NULL, NULL, NULL, NULL));
    assert (s_test_status (call) == 503);
    tl_call_destroy (&call);
    if (verbose)
        printf ("(upload ok) ");
}
