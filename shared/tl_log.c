//  tl_log.c — structured logs: one JSON object per line on stderr.
#include "tl_log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define S_LINE_MAX 4096

static const char *s_program = "tally";
static tl_log_level_t s_level = TL_LOG_INFO;
static int s_pid;                   //  cached: getpid is a syscall per call
static const char *s_level_names [] = { "debug", "info", "warn", "error" };

void
tl_log_init (const char *program)
{
    s_program = program;
    s_pid = (int) getpid ();
    const char *level = getenv ("TALLY_LOG_LEVEL");
    for (int i = 0; level && i < 4; i++)
        if (strcmp (level, s_level_names [i]) == 0)
            s_level = (tl_log_level_t) i;
}

bool
tl_log_enabled (tl_log_level_t level)
{
    return level >= s_level;
}

void
tl_log_escape (char *out, size_t size, size_t *pos, const char *text)
{
    static const char hex [] = "0123456789abcdef";
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        char esc [7];
        size_t n = 0;
        if (*c == '"' || *c == '\\') {
            esc [n++] = '\\';
            esc [n++] = (char) *c;
        }
        else
        if (*c < 0x20) {
            memcpy (esc, "\\u00", 4);
            esc [4] = hex [*c >> 4];
            esc [5] = hex [*c & 15];
            n = 6;
        }
        else
            esc [n++] = (char) *c;
        if (*pos + n >= size)
            break;
        memcpy (out + *pos, esc, n);
        *pos += n;
    }
    out [*pos < size ? *pos : size - 1] = 0;
}

//  Writes the standard head of a line: {"ts":…,"level":…,"prog":…
static size_t
s_head (char *line, tl_log_level_t level)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    char ts [32];
    strftime (ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf (line, S_LINE_MAX,
                      "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"prog\":\"%s\",\"pid\":%d",
                      ts, (int) (tv.tv_usec / 1000), s_level_names [level],
                      s_program, s_pid ? s_pid : (int) getpid ());
    return n > 0 && n < S_LINE_MAX ? (size_t) n : 0;
}

static void
s_write_line (char *line, size_t pos)
{
    if (pos + 3 > S_LINE_MAX)
        pos = S_LINE_MAX - 3;
    line [pos++] = '}';
    line [pos++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, pos);
    (void) rc;
}

void
tl_log (tl_log_level_t level, const char *trace, const char *format, ...)
{
    if (level < s_level)
        return;
    char text [S_LINE_MAX / 2];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);

    char line [S_LINE_MAX];
    size_t pos = s_head (line, level);
    if (trace) {
        memcpy (line + pos, ",\"trace\":\"", 10);
        pos += 10;
        tl_log_escape (line, S_LINE_MAX - 64, &pos, trace);
        line [pos++] = '"';
    }
    memcpy (line + pos, ",\"msg\":\"", 8);
    pos += 8;
    tl_log_escape (line, S_LINE_MAX - 4, &pos, text);
    line [pos++] = '"';
    s_write_line (line, pos);
}

void
tl_log_json (tl_log_level_t level, const char *json_fields)
{
    if (level < s_level)
        return;
    char line [S_LINE_MAX];
    size_t pos = s_head (line, level);
    size_t n = strlen (json_fields);
    if (pos + 1 + n + 3 > S_LINE_MAX)
        return;                 //  a caller bug: never emit broken JSON
    line [pos++] = ',';
    memcpy (line + pos, json_fields, n);
    pos += n;
    s_write_line (line, pos);
}

void
tl_log_test (bool verbose)
{
    char out [16];
    size_t pos = 0;
    tl_log_escape (out, sizeof out, &pos, "a\"b\n");
    assert (strcmp (out, "a\\\"b\\u000a") == 0);
    pos = 0;
    tl_log_escape (out, sizeof out, &pos, "0123456789abcdefghij");
    assert (pos < sizeof out && strlen (out) == pos);
    if (verbose)
        tl_log (TL_LOG_INFO, "trace-1", "self-test %d", 1);
}
