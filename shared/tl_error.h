//  tl_error.h — the one error convention of Tally's C code.
//  A function that can fail returns 0 (or a non-negative count) on success
//  and one of these negative codes on failure, as libuv does. Callers never
//  have to inspect errno or a side channel.
#ifndef TL_ERROR_H_INCLUDED
#define TL_ERROR_H_INCLUDED

typedef enum {
    TL_OK        =   0,
    TL_ENOMEM    =  -1,   //  allocation failed
    TL_EINVAL    =  -2,   //  malformed input (bad bytes, bad syntax)
    TL_ETYPE     =  -3,   //  well-formed, but a value has the wrong type
    TL_ETOOBIG   =  -4,   //  input exceeds a bound in tl_limits.h
    TL_ENOTFOUND =  -5,
    TL_EEXIST    =  -6,
    TL_EPROTO    =  -7,   //  a peer broke the wire protocol
    TL_EDB       =  -8,   //  database error that is not the caller's fault
    TL_ERETRY    =  -9,   //  transient: serialization failure, deadlock
    TL_ETIMEDOUT = -10,
    TL_EIO       = -11,   //  file or socket error
    TL_ECONFIG   = -12,   //  bad configuration
    TL_EUNAVAIL  = -13,   //  no instance / connection available
    TL_EBUSY     = -14,   //  a bound queue is full
} tl_error_t;

//  Returns a static, human-readable name for a code ("TL_EINVAL").
const char *tl_strerror (int code);

#include <stddef.h>

//  Formats an error message into `errbuf` (when not NULL), replacing any
//  byte that is not printable ASCII with '?', so that a message quoting
//  untrusted input is safe in a JSON reply or a log line.
void tl_error_format (char *errbuf, size_t errsize, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
