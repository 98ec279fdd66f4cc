//  gw_sessions.c — the sessions a gateway has checked (gw_sessions.h).
//
//  Three views of the same entries: by token hash (the lookup), by age
//  (the oldest goes when full), and by user (what a broadcast forgets).
//  An entry's caller is a request message holding only the caller, copied
//  into each request it serves.
#include "gw_sessions.h"
#include "tl_error.h"
#include "tl_limits.h"

#include <czmq.h>
#include <sodium.h>

#define S_KEY_BYTES 16              //  the token's keyed hash, in hex as the key

typedef struct {
    char key [S_KEY_BYTES * 2 + 1];
    tl_msg_t *caller;               //  kind, user id, tz, verified, roles
    uint64_t expires;               //  monotonic ms
    void *age_handle;               //  in self->ages
    void *user_handle;              //  in its user's list
} s_entry_t;

struct _gw_sessions_t {
    unsigned char secret [crypto_generichash_KEYBYTES];
    size_t max;
    uint64_t ttl_ms;
    zhashx_t *entries;              //  key → s_entry_t (owned)
    zlistx_t *ages;                 //  s_entry_t *, oldest first
    zhashx_t *users;                //  user id → zlistx_t * of s_entry_t *
    uint64_t generation;
    uint64_t hits;
    uint64_t misses;
};

static void
s_entry_free (void **item)
{
    s_entry_t *entry = (s_entry_t *) *item;
    if (entry) {
        tl_msg_destroy (&entry->caller);
        free (entry);
        *item = NULL;
    }
}

static void
s_list_free (void **item)
{
    zlistx_t *list = (zlistx_t *) *item;
    zlistx_destroy (&list);
    *item = NULL;
}

gw_sessions_t *
gw_sessions_new (size_t max, uint64_t ttl_ms)
{
    if (max == 0 || sodium_init () < 0)
        return NULL;
    gw_sessions_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    randombytes_buf (self->secret, sizeof self->secret);
    self->max = max;
    self->ttl_ms = ttl_ms;
    self->entries = zhashx_new ();
    self->ages = zlistx_new ();
    self->users = zhashx_new ();
    if (!self->entries || !self->ages || !self->users) {
        gw_sessions_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->entries, s_entry_free);
    zhashx_set_destructor (self->users, s_list_free);
    return self;
}

void
gw_sessions_destroy (gw_sessions_t **self_p)
{
    assert (self_p);
    gw_sessions_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->users);
    zlistx_destroy (&self->ages);
    zhashx_destroy (&self->entries);
    sodium_memzero (self->secret, sizeof self->secret);
    free (self);
    *self_p = NULL;
}

//  Writes the token's keyed hash, in hex, into `key`.
static void
s_key (gw_sessions_t *self, const char *token, char key [S_KEY_BYTES * 2 + 1])
{
    unsigned char hash [S_KEY_BYTES];
    crypto_generichash (hash, sizeof hash, (const unsigned char *) token, strlen (token),
                        self->secret, sizeof self->secret);
    sodium_bin2hex (key, S_KEY_BYTES * 2 + 1, hash, sizeof hash);
}

//  Removes an entry from the three views and frees it.
static void
s_remove (gw_sessions_t *self, s_entry_t *entry)
{
    zlistx_delete (self->ages, entry->age_handle);
    const char *user = tl_msg_str (entry->caller, TL_MSG_USER_ID);
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->users, user);
    if (list) {
        zlistx_delete (list, entry->user_handle);
        if (zlistx_size (list) == 0)
            zhashx_delete (self->users, user);
    }
    zhashx_delete (self->entries, entry->key);
}

bool
gw_sessions_lookup (gw_sessions_t *self, const char *token, uint64_t now_ms, tl_msg_t *msg)
{
    char key [S_KEY_BYTES * 2 + 1];
    s_key (self, token, key);
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->entries, key);
    if (entry && entry->expires <= now_ms) {
        s_remove (self, entry);
        entry = NULL;
    }
    if (!entry || tl_msg_copy_caller (msg, entry->caller) != 0) {
        self->misses++;
        return false;
    }
    self->hits++;
    return true;
}

uint64_t
gw_sessions_generation (gw_sessions_t *self)
{
    return self->generation;
}

int
gw_sessions_store (gw_sessions_t *self, const char *token, uint64_t generation,
                   const tl_msg_t *caller, uint64_t now_ms, uint64_t lifetime_ms)
{
    const char *user = tl_msg_str (caller, TL_MSG_USER_ID);
    if (generation != self->generation || lifetime_ms == 0 || !user)
        return 0;
    s_entry_t *entry = calloc (1, sizeof *entry);
    if (!entry)
        return TL_ENOMEM;
    s_key (self, token, entry->key);
    entry->caller = tl_msg_new (TL_MSG_REQUEST);
    if (!entry->caller || tl_msg_copy_caller (entry->caller, caller) != 0) {
        s_entry_free ((void **) &entry);
        return TL_ENOMEM;
    }
    entry->expires = now_ms + (lifetime_ms < self->ttl_ms ? lifetime_ms : self->ttl_ms);
    s_entry_t *old = (s_entry_t *) zhashx_lookup (self->entries, entry->key);
    if (old)
        s_remove (self, old);
    while (zlistx_size (self->ages) >= self->max)
        s_remove (self, (s_entry_t *) zlistx_first (self->ages));

    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->users, user);
    if (!list) {
        list = zlistx_new ();
        if (!list || zhashx_insert (self->users, user, list) != 0) {
            zlistx_destroy (&list);
            s_entry_free ((void **) &entry);
            return TL_ENOMEM;
        }
    }
    entry->user_handle = zlistx_add_end (list, entry);
    entry->age_handle = zlistx_add_end (self->ages, entry);
    if (!entry->user_handle || !entry->age_handle
    ||  zhashx_insert (self->entries, entry->key, entry) != 0) {
        if (entry->user_handle)
            zlistx_delete (list, entry->user_handle);
        if (entry->age_handle)
            zlistx_delete (self->ages, entry->age_handle);
        if (zlistx_size (list) == 0)
            zhashx_delete (self->users, user);
        s_entry_free ((void **) &entry);
        return TL_ENOMEM;
    }
    return 0;
}

size_t
gw_sessions_forget (gw_sessions_t *self, const char *user_id)
{
    self->generation++;
    size_t count = 0;
    if (!user_id) {
        count = zhashx_size (self->entries);
        zhashx_purge (self->users);
        zlistx_purge (self->ages);
        zhashx_purge (self->entries);
        return count;
    }
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->users, user_id);
    while (list) {
        s_entry_t *entry = (s_entry_t *) zlistx_first (list);
        bool last = zlistx_size (list) == 1;
        s_remove (self, entry);         //  the last one takes the list with it
        count++;
        if (last)
            break;
    }
    return count;
}

size_t gw_sessions_size (gw_sessions_t *self) { return zhashx_size (self->entries); }
uint64_t gw_sessions_hits (gw_sessions_t *self) { return self->hits; }
uint64_t gw_sessions_misses (gw_sessions_t *self) { return self->misses; }

//  ---------------------------------------------------------------------
//  Self-test

static tl_msg_t *
s_caller (const char *user, const char *zone, bool verified, const char *role)
{
    tl_msg_t *msg = tl_msg_new (TL_MSG_REQUEST);
    assert (msg);
    tl_msg_set_str (msg, TL_MSG_CALLER, "user");
    tl_msg_set_str (msg, TL_MSG_USER_ID, user);
    tl_msg_set_str (msg, TL_MSG_USER_TZ, zone);
    tl_msg_set_user_verified (msg, verified);
    if (role)
        tl_msg_add_role (msg, role);
    return msg;
}

void
gw_sessions_test (bool verbose)
{
    gw_sessions_t *cache = gw_sessions_new (3, 1000);
    assert (cache);
    tl_msg_t *alice = s_caller ("u-alice", "Europe/Paris", true, "admin");
    tl_msg_t *bob = s_caller ("u-bob", "UTC", false, NULL);
    tl_msg_t *into = tl_msg_new (TL_MSG_REQUEST);
    assert (into);

    //  A miss, a store, a hit that gives the whole caller back
    assert (!gw_sessions_lookup (cache, "tok-a1", 0, into));
    uint64_t gen = gw_sessions_generation (cache);
    assert (gw_sessions_store (cache, "tok-a1", gen, alice, 0, 60000) == 0);
    assert (gw_sessions_lookup (cache, "tok-a1", 10, into));
    assert (streq (tl_msg_str (into, TL_MSG_CALLER), "user"));
    assert (streq (tl_msg_str (into, TL_MSG_USER_ID), "u-alice"));
    assert (streq (tl_msg_str (into, TL_MSG_USER_TZ), "Europe/Paris"));
    assert (tl_msg_user_verified (into) == 1);
    const char **roles = NULL;
    assert (tl_msg_roles (into, &roles) == 1 && streq (roles [0], "admin"));
    assert (gw_sessions_hits (cache) == 1 && gw_sessions_misses (cache) == 1);
    assert (!gw_sessions_lookup (cache, "tok-a", 10, into));   //  another token

    //  Lifetimes: the TTL, or the session's own end when sooner
    assert (!gw_sessions_lookup (cache, "tok-a1", 1000, into));
    assert (gw_sessions_size (cache) == 0);
    assert (gw_sessions_store (cache, "tok-a1", gen, alice, 0, 100) == 0);
    assert (gw_sessions_lookup (cache, "tok-a1", 99, into));
    assert (!gw_sessions_lookup (cache, "tok-a1", 100, into));
    assert (gw_sessions_store (cache, "tok-a1", gen, alice, 0, 0) == 0);
    assert (gw_sessions_size (cache) == 0);                     //  already over

    //  Forgetting a user forgets all their sessions and no one else's
    assert (gw_sessions_store (cache, "tok-a1", gen, alice, 0, 60000) == 0);
    assert (gw_sessions_store (cache, "tok-a2", gen, alice, 0, 60000) == 0);
    assert (gw_sessions_store (cache, "tok-b1", gen, bob, 0, 60000) == 0);
    assert (gw_sessions_size (cache) == 3);
    assert (gw_sessions_forget (cache, "u-alice") == 2);
    assert (!gw_sessions_lookup (cache, "tok-a1", 1, into));
    assert (!gw_sessions_lookup (cache, "tok-a2", 1, into));
    assert (gw_sessions_lookup (cache, "tok-b1", 1, into));
    assert (streq (tl_msg_str (into, TL_MSG_USER_ID), "u-bob"));
    assert (tl_msg_roles (into, &roles) == 0 && tl_msg_user_verified (into) == 0);
    assert (gw_sessions_forget (cache, "u-nobody") == 0);

    //  A check sent before a forget is not stored after it
    assert (gw_sessions_store (cache, "tok-a1", gen, alice, 0, 60000) == 0);
    assert (!gw_sessions_lookup (cache, "tok-a1", 1, into));
    gen = gw_sessions_generation (cache);
    assert (gw_sessions_store (cache, "tok-a1", gen, alice, 0, 60000) == 0);
    assert (gw_sessions_lookup (cache, "tok-a1", 1, into));

    //  Bounded: the oldest entry goes first; storing again replaces
    assert (gw_sessions_store (cache, "tok-a1", gen, alice, 0, 60000) == 0);
    assert (gw_sessions_size (cache) == 2);
    assert (gw_sessions_store (cache, "tok-a2", gen, alice, 0, 60000) == 0);
    assert (gw_sessions_store (cache, "tok-a3", gen, alice, 0, 60000) == 0);
    assert (gw_sessions_size (cache) == 3);
    assert (!gw_sessions_lookup (cache, "tok-b1", 1, into));    //  the oldest
    assert (gw_sessions_lookup (cache, "tok-a1", 1, into));

    //  Forgetting everyone
    assert (gw_sessions_forget (cache, NULL) == 3);
    assert (gw_sessions_size (cache) == 0);
    assert (!gw_sessions_lookup (cache, "tok-a3", 1, into));
    gen = gw_sessions_generation (cache);
    assert (gw_sessions_store (cache, "tok-a3", gen, alice, 0, 60000) == 0);
    assert (gw_sessions_forget (cache, "u-alice") == 1);

    tl_msg_destroy (&into);
    tl_msg_destroy (&alice);
    tl_msg_destroy (&bob);
    gw_sessions_destroy (&cache);
    assert (cache == NULL);
    gw_sessions_destroy (&cache);
    if (verbose)
        printf ("(sessions ok) ");
}
