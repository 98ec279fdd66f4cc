//  mail_spool.c — the spool folder (see mail_spool.h).
//  A message is written to a fresh temp file (mkstemp: O_EXCL, 0600),
//  flushed with fsync, then hard-linked to its final name: link(2) fails
//  with EEXIST instead of replacing, which makes "at most once" hold even
//  when two instances write the same id at the same moment. The folder is
//  fsynced so that the new name survives a crash. On a file system without
//  hard links, rename(2) is the fallback (same content, last one wins).
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail_spool.h"
#include "mail_limits.h"
#include "tl_error.h"

#define S_SUFFIX        ".eml"


//  Returns true for a character allowed in a spool name.

static bool
s_name_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
}


//  --------------------------------------------------------------------------
//  Writes the file name for a Message-ID.

int
mail_spool_path (const char *dir, const char *message_id, char *path, size_t size)
{
    assert (dir);
    assert (path);
    if (!message_id)
        return TL_EINVAL;
    const char *id = message_id;
    size_t length = strlen (id);
    if (length >= 2 && id [0] == '<' && id [length - 1] == '>') {
        id++;
        length -= 2;
    }
    if (length == 0 || length > MAIL_SPOOL_MAX_NAME_LEN || id [0] == '.')
        return TL_EINVAL;
    for (size_t i = 0; i < length; i++)
        if (!s_name_char (id [i]))
            return TL_EINVAL;
    int written = snprintf (path, size, "%s/%.*s" S_SUFFIX, dir, (int) length, id);
    if (written < 0 || (size_t) written >= size)
        return TL_ETOOBIG;
    return 0;
}


//  Writes all of `data` to `fd`. Returns 0 or -1 (errno set).

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t done = write (fd, data, size);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += done;
        size -= (size_t) done;
    }
    return 0;
}


//  Flushes the folder's entries to disk. Returns 0 or -1 (errno set).

static int
s_sync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}


//  --------------------------------------------------------------------------
//  Writes one message into the spool folder, at most once.

int
mail_spool_write (const char *dir, const char *message_id, const char *message,
                  size_t size, bool *created, char *errbuf, size_t errsize)
{
    assert (dir);
    assert (message || size == 0);
    if (created)
        *created = false;
    char path [PATH_MAX];
    int rc = mail_spool_path (dir, message_id, path, sizeof path);
    if (rc) {
        tl_error_format (errbuf, errsize, "bad Message-ID for a spool file name");
        return rc;
    }
    if (size > MAIL_MAX_MESSAGE_BYTES)
        return TL_ETOOBIG;
    //  Already spooled: nothing to do (the common case of a retry).
    if (access (path, F_OK) == 0)
        return 0;
    if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
        tl_error_format (errbuf, errsize, "mkdir %s: %s", dir, strerror (errno));
        return TL_EIO;
    }
    //  The temp name: a dot, the final name, a unique suffix.
    char temp [PATH_MAX];
    const char *base = strrchr (path, '/') + 1;
    int written = snprintf (temp, sizeof temp, "%s/.%s.XXXXXX", dir, base);
    if (written < 0 || (size_t) written >= sizeof temp)
        return TL_ETOOBIG;
    int fd = mkstemp (temp);
    if (fd < 0) {
        tl_error_format (errbuf, errsize, "create in %s: %s", dir, strerror (errno));
        return TL_EIO;
    }
    if (s_write_all (fd, message, size) != 0 || fsync (fd) != 0) {
        tl_error_format (errbuf, errsize, "write %s: %s", temp, strerror (errno));
        close (fd);
        unlink (temp);
        return TL_EIO;
    }
    if (close (fd) != 0) {
        tl_error_format (errbuf, errsize, "close %s: %s", temp, strerror (errno));
        unlink (temp);
        return TL_EIO;
    }
    bool made = false;
    if (link (temp, path) == 0)
        made = true;
    else
    if (errno == EEXIST)
        made = false;               //  another writer won: keep its file
    else
    if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == ENOSYS) {
        if (rename (temp, path) != 0) {
            tl_error_format (errbuf, errsize, "rename to %s: %s", path, strerror (errno));
            unlink (temp);
            return TL_EIO;
        }
        made = true;
    }
    else {
        tl_error_format (errbuf, errsize, "link to %s: %s", path, strerror (errno));
        unlink (temp);
        return TL_EIO;
    }
    unlink (temp);                  //  no-op after a rename
    if (made && s_sync_dir (dir) != 0) {
        tl_error_format (errbuf, errsize, "fsync %s: %s", dir, strerror (errno));
        return TL_EIO;
    }
    if (created)
        *created = made;
    return 0;
}


//  --------------------------------------------------------------------------
//  Self-test

//  Counts the entries of `dir` (without . and ..); hidden ones in *hidden.

static int
s_test_count (const char *dir, int *hidden)
{
    DIR *handle = opendir (dir);
    assert (handle);
    int count = 0;
    *hidden = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
            continue;
        count++;
        if (entry->d_name [0] == '.')
            (*hidden)++;
    }
    closedir (handle);
    return count;
}


//  Reads a whole small file into `buffer`; returns its size.

static size_t
s_test_read (const char *path, char *buffer, size_t size)
{
    FILE *file = fopen (path, "rb");
    assert (file);
    size_t got = fread (buffer, 1, size - 1, file);
    buffer [got] = 0;
    fclose (file);
    return got;
}


typedef struct {
    const char *dir;
    char message [32];
    bool created;
    int rc;
} s_test_writer_t;

static void *
s_test_writer (void *arg)
{
    s_test_writer_t *writer = (s_test_writer_t *) arg;
    writer->rc = mail_spool_write (writer->dir, "<race@tally>", writer->message,
                                   strlen (writer->message), &writer->created, NULL, 0);
    return NULL;
}

void
mail_spool_test (bool verbose)
{
    char root [] = "/tmp/tally-spooltest-XXXXXX";
    assert (mkdtemp (root));
    char dir [64];
    snprintf (dir, sizeof dir, "%s/spool", root);   //  created on first write

    //  Names: the Message-ID without brackets; nothing that leaves the folder.
    char path [PATH_MAX];
    assert (mail_spool_path ("/s", "<abc-1@tally>", path, sizeof path) == 0);
    assert (strcmp (path, "/s/abc-1@tally.eml") == 0);
    assert (mail_spool_path ("/s", "abc-1@tally", path, sizeof path) == 0);
    assert (strcmp (path, "/s/abc-1@tally.eml") == 0);
    assert (mail_spool_path ("/s", "<../../etc/x@tally>", path, sizeof path) == TL_EINVAL);
    assert (mail_spool_path ("/s", "<a/b@tally>", path, sizeof path) == TL_EINVAL);
    assert (mail_spool_path ("/s", "<.hidden@tally>", path, sizeof path) == TL_EINVAL);
    assert (mail_spool_path ("/s", "<>", path, sizeof path) == TL_EINVAL);
    assert (mail_spool_path ("/s", "<a b@tally>", path, sizeof path) == TL_EINVAL);
    assert (mail_spool_path ("/s", "<a\n@tally>", path, sizeof path) == TL_EINVAL);
    assert (mail_spool_path ("/s", NULL, path, sizeof path) == TL_EINVAL);
    assert (mail_spool_path ("/s", "<abc@tally>", path, 8) == TL_ETOOBIG);
    char long_id [MAIL_SPOOL_MAX_NAME_LEN + 2];
    memset (long_id, 'a', sizeof long_id - 1);
    long_id [sizeof long_id - 1] = 0;
    assert (mail_spool_path ("/s", long_id, path, sizeof path) == TL_EINVAL);
    long_id [sizeof long_id - 2] = 0;
    assert (mail_spool_path ("/s", long_id, path, sizeof path) == 0);

    //  First write makes the folder and the file, with the exact bytes.
    const char *message = "From: tally@example.com\r\nTo: ana@example.com\r\n\r\nhi\r\n";
    bool created = false;
    char errbuf [256];
    assert (mail_spool_write (dir, "<m1@tally>", message, strlen (message), &created,
                              errbuf, sizeof errbuf) == 0);
    assert (created);
    assert (mail_spool_path (dir, "<m1@tally>", path, sizeof path) == 0);
    char content [256];
    assert (s_test_read (path, content, sizeof content) == strlen (message));
    assert (strcmp (content, message) == 0);
    struct stat status;
    assert (stat (path, &status) == 0 && (status.st_mode & 0777) == 0600);
    assert (stat (dir, &status) == 0 && (status.st_mode & 0777) == 0700);

    //  The same id again: no second file, the first one untouched.
    assert (mail_spool_write (dir, "<m1@tally>", "other", 5, &created,
                              errbuf, sizeof errbuf) == 0);
    assert (!created);
    assert (s_test_read (path, content, sizeof content) == strlen (message));
    int hidden = 0;
    assert (s_test_count (dir, &hidden) == 1 && hidden == 0);

    //  Another id is another file.
    assert (mail_spool_write (dir, "m2@tally", "second\r\n", 8, NULL, NULL, 0) == 0);
    assert (s_test_count (dir, &hidden) == 2 && hidden == 0);

    //  Writers racing on one id: exactly one makes the file, every one
    //  succeeds, no temp file is left.
    enum { WRITERS = 4 };
    s_test_writer_t writers [WRITERS];
    pthread_t threads [WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        writers [i].dir = dir;
        snprintf (writers [i].message, sizeof writers [i].message, "writer %d\r\n", i);
        writers [i].created = false;
        writers [i].rc = -1;
        assert (pthread_create (&threads [i], NULL, s_test_writer, &writers [i]) == 0);
    }
    int makers = 0;
    for (int i = 0; i < WRITERS; i++) {
        assert (pthread_join (threads [i], NULL) == 0);
        assert (writers [i].rc == 0);
        makers += writers [i].created;
    }
    assert (makers == 1);
    assert (s_test_count (dir, &hidden) == 3 && hidden == 0);
    assert (mail_spool_path (dir, "<race@tally>", path, sizeof path) == 0);
    s_test_read (path, content, sizeof content);
    for (int i = 0; i < WRITERS; i++)
        if (writers [i].created)
            assert (strcmp (content, writers [i].message) == 0);

    //  Bad ids and unusable folders are refused, nothing written.
    assert (mail_spool_write (dir, "<../escape@tally>", "x", 1, &created,
                              errbuf, sizeof errbuf) == TL_EINVAL);
    char blocked [PATH_MAX];
    snprintf (blocked, sizeof blocked, "%s/m1@tally.eml/sub", dir);
    assert (mail_spool_write (blocked, "<m3@tally>", "x", 1, &created,
                              errbuf, sizeof errbuf) == TL_EIO);
    if (verbose)
        printf ("\n  blocked folder: %s\n", errbuf);
    assert (s_test_count (dir, &hidden) == 3 && hidden == 0);

    //  Clean up.
    DIR *handle = opendir (dir);
    assert (handle);
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (entry->d_name [0] == '.')
            continue;
        snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
        assert (unlink (path) == 0);
    }
    closedir (handle);
    assert (rmdir (dir) == 0);
    assert (rmdir (root) == 0);
}
