//  tl_env.h — configuration from the environment, read one way by every
//  program: an unset or empty variable takes its default, a flag is
//  1/true/yes/on or 0/false/no/off, a number is whole and in its range.
#ifndef TL_ENV_H_INCLUDED
#define TL_ENV_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  The value of `name` (borrowed), or `fallback` when unset or empty.
const char *tl_env (const char *name, const char *fallback);

//  The flag `name`: `fallback` when unset, empty or not a flag word.
bool tl_env_flag (const char *name, bool fallback);

//  Reads the whole number `name` into *value (`fallback` when unset or
//  empty). Returns 0, or TL_ECONFIG (logged, naming the variable) when it
//  is not a whole number within min..max.
int tl_env_long (const char *name, long fallback, long min, long max, long *value);

//  TALLY_PUBLIC_URL (the URL clients see; default http://127.0.0.1:8080)
//  into `url` (`size` bytes), without a trailing slash. Returns 0, or
//  TL_ECONFIG (logged) when it is not an http(s) URL that fits.
int tl_env_public_url (char *url, size_t size);

//  Self-test, run by ctest.
void tl_env_test (bool verbose);

#endif
