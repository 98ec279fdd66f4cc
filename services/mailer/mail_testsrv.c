//  mail_testsrv.c — a Python helper process for self-tests (see
//  mail_testsrv.h). The process is started with posix_spawn, stopped by its
//  own pid, and owns one temporary folder, removed on destroy.
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mail_testsrv.h"

#define S_PYTHON            "/usr/bin/python3"
#define S_READY_MSEC        15000   //  Python plus aiosmtpd start in well under
#define S_POLL_MSEC         20
#define S_PATH_MAX          512

extern char **environ;

struct _mail_testsrv_t {
    char dir [S_PATH_MAX];          //  the server's folder
    pid_t pid;                      //  the Python process, or 0 once reaped
    int port;
};


//  Sleeps `msec` milliseconds.

static void
s_sleep_msec (long msec)
{
    struct timespec ts = { msec / 1000, (msec % 1000) * 1000000L };
    nanosleep (&ts, NULL);
}


//  Spawns python3 with `argv` (argv [0] included), stdin and stdout on
//  /dev/null, stderr on `stderr_path` (or /dev/null when NULL). Returns the
//  pid, or -1.

static pid_t
s_spawn (char *const argv [], const char *stderr_path)
{
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init (&actions))
        return -1;
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 2, stderr_path? stderr_path: "/dev/null",
                                      O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawn (&pid, S_PYTHON, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    return rc == 0? pid: -1;
}


//  --------------------------------------------------------------------------
//  Returns true when python3 can import `module`.

bool
mail_testsrv_python_has (const char *module)
{
    assert (module);
    if (access (S_PYTHON, X_OK) != 0)
        return false;
    char code [256];
    snprintf (code, sizeof code, "import %s", module);
    char *argv [] = { (char *) "python3", (char *) "-c", code, NULL };
    pid_t pid = s_spawn (argv, NULL);
    if (pid < 0)
        return false;
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0;
}


//  Removes the files of `dir` (one level) and the folder itself.

static void
s_remove_dir (const char *dir)
{
    DIR *handle = opendir (dir);
    if (handle) {
        struct dirent *entry;
        while ((entry = readdir (handle))) {
            if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
                continue;
            char path [S_PATH_MAX + 256];
            snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            unlink (path);
        }
        closedir (handle);
    }
    rmdir (dir);
}


//  --------------------------------------------------------------------------
//  Starts the server and waits for its port.

mail_testsrv_t *
mail_testsrv_new (const char *script, const char *mode)
{
    assert (script);
    assert (mode);
    mail_testsrv_t *self = (mail_testsrv_t *) calloc (1, sizeof (mail_testsrv_t));
    if (!self)
        return NULL;
    const char *tmp = getenv ("TMPDIR");
    snprintf (self->dir, sizeof self->dir, "%s/tally-mailtest-XXXXXX",
              tmp && *tmp? tmp: "/tmp");
    if (!mkdtemp (self->dir)) {
        free (self);
        return NULL;
    }
    char stderr_path [S_PATH_MAX + 16];
    snprintf (stderr_path, sizeof stderr_path, "%s/stderr", self->dir);
    char *argv [] = { (char *) "python3", (char *) "-c", (char *) script,
                      self->dir, (char *) mode, NULL };
    self->pid = s_spawn (argv, stderr_path);
    if (self->pid < 0) {
        self->pid = 0;
        mail_testsrv_destroy (&self);
        return NULL;
    }
    for (long waited = 0; waited < S_READY_MSEC; waited += S_POLL_MSEC) {
        char *port = mail_testsrv_read (self, "port", NULL);
        if (port) {
            self->port = atoi (port);
            free (port);
            break;
        }
        int status;
        if (waitpid (self->pid, &status, WNOHANG) == self->pid) {
            self->pid = 0;          //  exited before it was ready
            break;
        }
        s_sleep_msec (S_POLL_MSEC);
    }
    if (self->port <= 0) {
        char *errors = mail_testsrv_read (self, "stderr", NULL);
        if (errors && *errors)
            fprintf (stderr, "mail_testsrv: server did not start: %s\n", errors);
        free (errors);
        mail_testsrv_destroy (&self);
        return NULL;
    }
    return self;
}


//  --------------------------------------------------------------------------
//  Stops the server and removes its folder.

void
mail_testsrv_destroy (mail_testsrv_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        mail_testsrv_t *self = *self_p;
        if (self->pid > 0) {
            kill (self->pid, SIGTERM);
            while (waitpid (self->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        s_remove_dir (self->dir);
        free (self);
        *self_p = NULL;
    }
}


int
mail_testsrv_port (mail_testsrv_t *self)
{
    assert (self);
    return self->port;
}


//  --------------------------------------------------------------------------
//  Reads one file of the server's folder.

char *
mail_testsrv_read (mail_testsrv_t *self, const char *name, size_t *size)
{
    assert (self);
    assert (name);
    char path [S_PATH_MAX + 256];
    snprintf (path, sizeof path, "%s/%s", self->dir, name);
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *data = NULL;
    size_t used = 0;
    size_t alloc = 0;
    while (true) {
        if (used + 4096 + 1 > alloc) {
            alloc = alloc? alloc * 2: 8192;
            char *bigger = (char *) realloc (data, alloc);
            assert (bigger);
            data = bigger;
        }
        size_t got = fread (data + used, 1, alloc - used - 1, file);
        used += got;
        if (got == 0)
            break;
    }
    fclose (file);
    data [used] = 0;
    if (size)
        *size = used;
    return data;
}


//  --------------------------------------------------------------------------
//  Returns a port where nothing listens.

int
mail_testsrv_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (fd, (struct sockaddr *) &address, sizeof address) == 0);
    socklen_t size = sizeof address;
    assert (getsockname (fd, (struct sockaddr *) &address, &size) == 0);
    close (fd);
    return ntohs (address.sin_port);
}


//  --------------------------------------------------------------------------
//  Self-test: a trivial server starts, reports its port, and is stopped.

void
mail_testsrv_test (bool verbose)
{
    if (!mail_testsrv_python_has ("socket")) {
        printf ("skipped (no %s) ", S_PYTHON);
        return;
    }
    assert (!mail_testsrv_python_has ("no_such_module_for_tally"));
    const char *script =
        "import os, socket, sys, time\n"
        "d = sys.argv[1]\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
        "open(os.path.join(d, 'mode'), 'w').write(sys.argv[2])\n"
        "open(os.path.join(d, 'port.tmp'), 'w').write(str(s.getsockname()[1]))\n"
        "os.rename(os.path.join(d, 'port.tmp'), os.path.join(d, 'port'))\n"
        "time.sleep(60)\n";
    mail_testsrv_t *server = mail_testsrv_new (script, "hello");
    assert (server);
    assert (mail_testsrv_port (server) > 0);
    size_t size = 0;
    char *mode = mail_testsrv_read (server, "mode", &size);
    assert (mode && size == 5 && strcmp (mode, "hello") == 0);
    free (mode);
    assert (mail_testsrv_read (server, "missing", NULL) == NULL);
    //  It really listens.
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    address.sin_port = htons ((uint16_t) mail_testsrv_port (server));
    assert (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
    close (fd);
    mail_testsrv_destroy (&server);
    assert (server == NULL);
    mail_testsrv_destroy (&server);
    //  A script that fails gives NULL, not a hang.
    server = mail_testsrv_new ("import sys; sys.exit(3)", "x");
    assert (server == NULL);
    //  Nothing listens on a closed port.
    fd = socket (AF_INET, SOCK_STREAM, 0);
    address.sin_port = htons ((uint16_t) mail_testsrv_closed_port ());
    assert (connect (fd, (struct sockaddr *) &address, sizeof address) < 0);
    close (fd);
}
