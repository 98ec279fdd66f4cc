//  mail_testsrv.h — a helper process for the mailer's self-tests: runs a
//  small Python server (an SMTP or HTTP peer) in a fresh temporary folder
//  and waits until it listens. The script gets the folder as argv [1] and
//  a mode as argv [2]; it must bind 127.0.0.1 port 0 and then write the
//  port it got to <folder>/port (write a temp file, then rename). What the
//  server receives, it writes as files in the same folder.
#ifndef MAIL_TESTSRV_H_INCLUDED
#define MAIL_TESTSRV_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _mail_testsrv_t mail_testsrv_t;

//  Returns true when /usr/bin/python3 runs and can import `module`.
bool mail_testsrv_python_has (const char *module);

//  Starts `/usr/bin/python3 -c script folder mode` and waits (at most
//  15 seconds) for its port file. Returns NULL when Python
//  cannot start, exits, or is not ready in time (its stderr is printed).
mail_testsrv_t *mail_testsrv_new (const char *script, const char *mode);

//  Stops the server (SIGTERM to its pid, then waits for it), removes its
//  folder and nulls the caller's reference. Safe on NULL.
void mail_testsrv_destroy (mail_testsrv_t **self_p);

//  Returns the TCP port the server listens on (127.0.0.1).
int mail_testsrv_port (mail_testsrv_t *self);

//  Returns the contents of file `name` in the server's folder (NUL-
//  terminated; the caller frees it) and its size in *size when not NULL;
//  NULL when there is no such file.
char *mail_testsrv_read (mail_testsrv_t *self, const char *name, size_t *size);

//  Returns a TCP port on 127.0.0.1 where nothing listens (bound, then
//  closed), for "connection refused" tests.
int mail_testsrv_closed_port (void);

//  Self-test.
void mail_testsrv_test (bool verbose);

#endif
