//  ev_perm.c — the decision of who may do what on an event (ev_perm.h).
#include "ev_perm.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char *s_roles [EV_ROLE_COUNT] = {
    "", "organizer", "coorganizer", "track_organizer", "moderator"
};
static const char *s_services [EV_SVC_COUNT] = {
    "event", "tickets", "orders", "tracks", "sessions", "speakers", "sponsors",
    "microlocations"
};
static const char *s_ops [EV_OP_COUNT] = { "create", "read", "update", "delete" };

int
ev_perm_decide (const ev_access_t *access, ev_service_t service, ev_op_t op)
{
    if (access->staff)
        return EV_ALLOW;
    bool role = access->role != EV_ROLE_NONE;
    bool visible = access->published || (role && access->event_read);
    if (!visible)
        return EV_HIDDEN;
    if (role && access->perm [op])
        return EV_ALLOW;
    //  What the public reads of a published event
    if (access->published && op == EV_OP_READ && service != EV_SVC_ORDERS)
        return EV_ALLOW;
    return EV_FORBIDDEN;
}

int
ev_role_parse (const char *name, ev_role_t *role)
{
    for (int i = 1; name && i < EV_ROLE_COUNT; i++)
        if (strcmp (name, s_roles [i]) == 0) {
            *role = (ev_role_t) i;
            return 0;
        }
    return -1;
}

const char *
ev_role_name (ev_role_t role)
{
    return role >= 0 && role < EV_ROLE_COUNT ? s_roles [role] : "";
}

int
ev_service_parse (const char *name, ev_service_t *service)
{
    for (int i = 0; name && i < EV_SVC_COUNT; i++)
        if (strcmp (name, s_services [i]) == 0) {
            *service = (ev_service_t) i;
            return 0;
        }
    return -1;
}

const char *
ev_service_name (ev_service_t service)
{
    return service >= 0 && service < EV_SVC_COUNT ? s_services [service] : "";
}

const char *
ev_op_name (ev_op_t op)
{
    return op >= 0 && op < EV_OP_COUNT ? s_ops [op] : "";
}

//  ---------------------------------------------------------------------
//  Self-test

static void
s_test_staff_may_do_everything (void)
{
    ev_access_t access = { .staff = true };
    for (int s = 0; s < EV_SVC_COUNT; s++)
        for (int op = 0; op < EV_OP_COUNT; op++)
            assert (ev_perm_decide (&access, (ev_service_t) s, (ev_op_t) op) == EV_ALLOW);
}

static void
s_test_a_draft_is_hidden_from_the_public (void)
{
    ev_access_t access = { .published = false };
    for (int s = 0; s < EV_SVC_COUNT; s++)
        for (int op = 0; op < EV_OP_COUNT; op++)
            assert (ev_perm_decide (&access, (ev_service_t) s, (ev_op_t) op) == EV_HIDDEN);
}

static void
s_test_the_public_reads_a_published_event_but_not_its_orders (void)
{
    ev_access_t access = { .published = true };
    for (int s = 0; s < EV_SVC_COUNT; s++) {
        int read = ev_perm_decide (&access, (ev_service_t) s, EV_OP_READ);
        assert (read == (s == EV_SVC_ORDERS ? EV_FORBIDDEN : EV_ALLOW));
        assert (ev_perm_decide (&access, (ev_service_t) s, EV_OP_CREATE) == EV_FORBIDDEN);
        assert (ev_perm_decide (&access, (ev_service_t) s, EV_OP_UPDATE) == EV_FORBIDDEN);
        assert (ev_perm_decide (&access, (ev_service_t) s, EV_OP_DELETE) == EV_FORBIDDEN);
    }
}

static void
s_test_a_role_does_what_its_permissions_say (void)
{
    //  A coorganizer (create, read, update) on a draft
    ev_access_t access = { .role = EV_ROLE_COORGANIZER, .event_read = true,
                           .perm = { true, true, true, false } };
    assert (ev_perm_decide (&access, EV_SVC_TRACKS, EV_OP_CREATE) == EV_ALLOW);
    assert (ev_perm_decide (&access, EV_SVC_ORDERS, EV_OP_READ) == EV_ALLOW);
    assert (ev_perm_decide (&access, EV_SVC_TRACKS, EV_OP_DELETE) == EV_FORBIDDEN);
    //  A role whose read on `event` was taken away no longer sees a draft
    access.event_read = false;
    assert (ev_perm_decide (&access, EV_SVC_TRACKS, EV_OP_CREATE) == EV_HIDDEN);
    //  ... but still reads what the public reads of a published one
    access.published = true;
    memset (access.perm, 0, sizeof access.perm);
    assert (ev_perm_decide (&access, EV_SVC_TRACKS, EV_OP_READ) == EV_ALLOW);
    assert (ev_perm_decide (&access, EV_SVC_ORDERS, EV_OP_READ) == EV_FORBIDDEN);
}

static void
s_test_names_read_back (void)
{
    for (int i = 1; i < EV_ROLE_COUNT; i++) {
        ev_role_t role;
        assert (ev_role_parse (ev_role_name ((ev_role_t) i), &role) == 0 && (int) role == i);
    }
    for (int i = 0; i < EV_SVC_COUNT; i++) {
        ev_service_t service;
        assert (ev_service_parse (ev_service_name ((ev_service_t) i), &service) == 0
                && (int) service == i);
    }
    ev_role_t role;
    ev_service_t service;
    assert (ev_role_parse ("", &role) == -1);
    assert (ev_role_parse (NULL, &role) == -1);
    assert (ev_role_parse ("Organizer", &role) == -1);
    assert (ev_service_parse ("events", &service) == -1);
    assert (strcmp (ev_op_name (EV_OP_DELETE), "delete") == 0);
}

void
ev_perm_test (bool verbose)
{
    if (verbose)
        printf (" * ev_perm: ");
    s_test_staff_may_do_everything ();
    s_test_a_draft_is_hidden_from_the_public ();
    s_test_the_public_reads_a_published_event_but_not_its_orders ();
    s_test_a_role_does_what_its_permissions_say ();
    s_test_names_read_back ();
    if (verbose)
        printf ("OK\n");
}
