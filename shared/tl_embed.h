//  tl_embed.h — files compiled into a binary (see shared/embed.cmake).
#ifndef TL_EMBED_H_INCLUDED
#define TL_EMBED_H_INCLUDED
#include <stddef.h>

typedef struct {
    const char *name;       //  base name of the file, NULL ends a table
    const char *data;       //  its bytes, followed by a NUL
    size_t size;            //  bytes, without that NUL
} tl_embed_t;

#endif
