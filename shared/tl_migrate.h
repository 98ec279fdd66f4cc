//  tl_migrate.h — creates and migrates a service's schema from the ordered
//  SQL files compiled into its binary (services/<name>/migrations/*.sql).
//  Instances that start together take turns on an advisory lock, so each
//  file is applied exactly once; a failing file leaves nothing behind.
#ifndef TL_MIGRATE_H_INCLUDED
#define TL_MIGRATE_H_INCLUDED

#include "tl_db.h"
#include "tl_embed.h"

//  Migrates `schema` in one transaction: takes the advisory lock
//  hashtext('tally.migrate.' || schema), creates the schema, its
//  schema_migrations table and the runtime's own tables (idempotency_keys, jobs)
//  if missing, then applies, in version order, every file of `files` (a
//  table ended by a NULL name; NULL means none) that schema_migrations does
//  not list, each with search_path set to `schema, public`, and records it.
//  File names must match [0-9]{3,}_[a-z0-9_]+\.sql; versions sort by number.
//  Returns how many of `files` were applied (0 when up to date), or a
//  negative TL_E* code with everything rolled back: TL_EINVAL for a bad
//  name, schema or file (logged), TL_ETOOBIG past TL_MAX_MIGRATIONS, or the
//  database error of the file that failed (logged with its name).
int tl_migrate (tl_db_t *db, const char *schema, const tl_embed_t *files);

//  Self-test: needs TALLY_TEST_DATABASE_URL, skipped without it.
void tl_migrate_test (bool verbose);

#endif
