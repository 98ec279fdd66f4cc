//  tl_error.c — names for the codes of tl_error.h.
#include "tl_error.h"

#include <stdarg.h>
#include <stdio.h>

const char *
tl_strerror (int code)
{
    switch (code) {
        case TL_OK:        return "TL_OK";
        case TL_ENOMEM:    return "TL_ENOMEM";
        case TL_EINVAL:    return "TL_EINVAL";
        case TL_ETYPE:     return "TL_ETYPE";
        case TL_ETOOBIG:   return "TL_ETOOBIG";
        case TL_ENOTFOUND: return "TL_ENOTFOUND";
        case TL_EEXIST:    return "TL_EEXIST";
        case TL_EPROTO:    return "TL_EPROTO";
        case TL_EDB:       return "TL_EDB";
        case TL_ERETRY:    return "TL_ERETRY";
        case TL_ETIMEDOUT: return "TL_ETIMEDOUT";
        case TL_EIO:       return "TL_EIO";
        case TL_ECONFIG:   return "TL_ECONFIG";
        case TL_EUNAVAIL:  return "TL_EUNAVAIL";
        case TL_EBUSY:     return "TL_EBUSY";
        default:           return "TL_E?";
    }
}

void
tl_error_format (char *errbuf, size_t errsize, const char *format, ...)
{
    if (!errbuf || errsize == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (errbuf, errsize, format, args);
    va_end (args);
    for (char *c = errbuf; *c; c++)
        if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
            *c = '?';
}
