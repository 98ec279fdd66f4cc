//  mail_spool.h — the spool folder: where mail goes when no SMTP URL is
//  configured (a developer's machine, the test suite). Each message is one
//  file, <folder>/<message-id>.eml, written atomically (temp file in the
//  same folder, fsync, then linked into place) and at most once: writing
//  the same Message-ID again leaves the first file as it is, so that a
//  retried outbox row never makes a second mail. Temp files start with
//  '.', which no message file does: readers skip dot files.
#ifndef MAIL_SPOOL_H_INCLUDED
#define MAIL_SPOOL_H_INCLUDED

#include <stdbool.h>
#include "mail_limits.h"
#include <stddef.h>

//  Writes into `path` (`size` bytes) the file name for `message_id`:
//  <dir>/<id>.eml, where id is the Message-ID without its angle brackets.
//  The id must be 1..MAIL_SPOOL_MAX_NAME_LEN bytes of [A-Za-z0-9._@+-]
//  not starting with '.', so a name can never leave the folder or collide
//  with another id. Returns 0, TL_EINVAL (bad id) or TL_ETOOBIG (path
//  does not fit).
int mail_spool_path (const char *dir, const char *message_id, char *path, size_t size);

//  Writes `message` (`size` bytes) for `message_id` into folder `dir`,
//  creating the folder (mode 0700) when it is missing. The file is 0600:
//  mail carries codes. Sets *created (when not NULL) to true when this call
//  made the file, false when it was already there. Returns 0, TL_EINVAL
//  (bad id), TL_ETOOBIG, or TL_EIO with the reason in errbuf.
int mail_spool_write (const char *dir, const char *message_id, const char *message,
                      size_t size, bool *created, char *errbuf, size_t errsize);

//  Self-test, run by ctest.
void mail_spool_test (bool verbose);

#endif
