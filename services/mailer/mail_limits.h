//  mail_limits.h — the mailer service's limits: sizes of messages and
//  their parts, SMTP and webhook timeouts, templates. (The platform's are
//  in shared/tl_limits.h.)
#ifndef MAIL_LIMITS_H_INCLUDED
#define MAIL_LIMITS_H_INCLUDED

#include "tl_limits.h"

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

#endif
