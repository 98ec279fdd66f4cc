//  standalone.c — runs a fuzz target's inputs without libFuzzer, so that the
//  seed corpora (and every crash ever found) run as ordinary ctest tests in
//  any build. Usage: fuzz-<name> <dir or file>...
//  Each regular file in each directory (dot files skipped, in name order) is
//  read into a buffer of exactly its size, so that a sanitizer sees any read
//  past the end, and given to LLVMFuzzerTestOneInput. Exits non-zero when a
//  directory is empty or a directory or file cannot be read.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Reads one file and runs it. Returns 0, or -1 if it cannot be read.

static int
s_run_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "fuzz: cannot open %s\n", path);
        return -1;
    }
    struct stat st;
    if (fstat (fileno (file), &st) || st.st_size < 0) {
        fclose (file);
        fprintf (stderr, "fuzz: cannot stat %s\n", path);
        return -1;
    }
    size_t size = (size_t) st.st_size;
    uint8_t *data = (uint8_t *) malloc (size? size: 1);
    if (!data || fread (data, 1, size, file) != size) {
        free (data);
        fclose (file);
        fprintf (stderr, "fuzz: cannot read %s\n", path);
        return -1;
    }
    fclose (file);
    LLVMFuzzerTestOneInput (data, size);
    free (data);
    return 0;
}

static int
s_skip_dot_files (const struct dirent *entry)
{
    return entry->d_name [0] != '.';
}

//  Runs every file of a directory. Returns how many, or -1 on an error.

static int
s_run_directory (const char *path)
{
    struct dirent **entries;
    int count = scandir (path, &entries, s_skip_dot_files, alphasort);
    if (count < 0) {
        fprintf (stderr, "fuzz: cannot read directory %s\n", path);
        return -1;
    }
    int ran = 0;
    int rc = 0;
    for (int index = 0; index < count; index++) {
        size_t size = strlen (path) + strlen (entries [index]->d_name) + 2;
        char *file = (char *) malloc (size);
        struct stat st;
        if (!file)
            rc = -1;
        else {
            snprintf (file, size, "%s/%s", path, entries [index]->d_name);
            if (stat (file, &st) == 0 && S_ISREG (st.st_mode)) {
                if (s_run_file (file))
                    rc = -1;
                else
                    ran++;
            }
        }
        free (file);
        free (entries [index]);
    }
    free (entries);
    if (rc == 0 && ran == 0) {
        fprintf (stderr, "fuzz: directory %s holds no inputs\n", path);
        return -1;
    }
    return rc? rc: ran;
}

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s <corpus dir or input file>...\n", argv [0]);
        return 2;
    }
    int failed = 0;
    long total = 0;
    for (int index = 1; index < argc; index++) {
        struct stat st;
        if (stat (argv [index], &st)) {
            fprintf (stderr, "fuzz: cannot read %s\n", argv [index]);
            failed = 1;
        }
        else
        if (S_ISDIR (st.st_mode)) {
            int ran = s_run_directory (argv [index]);
            if (ran < 0)
                failed = 1;
            else {
                printf ("fuzz: ran %d inputs from %s\n", ran, argv [index]);
                total += ran;
            }
        }
        else
        if (s_run_file (argv [index]))
            failed = 1;
        else
            total++;
    }
    printf ("fuzz: ran %ld inputs in all\n", total);
    return failed;
}
