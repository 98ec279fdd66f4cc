//  ev_perm.h — who may do what on an event: the roles, the services of an
//  event (its parts, each with its own permissions), the four operations,
//  and the one decision every handler asks for (event_can in
//  event_common.c reads the caller's role and its permissions, then asks
//  ev_perm_decide). Pure: no database, no allocation.
#ifndef EV_PERM_H_INCLUDED
#define EV_PERM_H_INCLUDED

#include <stdbool.h>

//  A role on one event, most senior first; EV_ROLE_NONE: the caller has none.
typedef enum {
    EV_ROLE_NONE = 0,
    EV_ROLE_ORGANIZER,
    EV_ROLE_COORGANIZER,
    EV_ROLE_TRACK_ORGANIZER,
    EV_ROLE_MODERATOR,
} ev_role_t;
#define EV_ROLE_COUNT 5

//  The services of an event, as the permission table names them.
typedef enum {
    EV_SVC_EVENT = 0,
    EV_SVC_TICKETS,
    EV_SVC_ORDERS,
    EV_SVC_TRACKS,
    EV_SVC_SESSIONS,
    EV_SVC_SPEAKERS,
    EV_SVC_SPONSORS,
    EV_SVC_MICROLOCATIONS,
} ev_service_t;
#define EV_SVC_COUNT 8

typedef enum { EV_OP_CREATE = 0, EV_OP_READ, EV_OP_UPDATE, EV_OP_DELETE } ev_op_t;
#define EV_OP_COUNT 4

//  What the decision needs to know of one caller and one event.
typedef struct {
    bool staff;                     //  admin or super_admin: everything
    bool published;                 //  the event's state
    ev_role_t role;                 //  the caller's role on it
    bool perm [EV_OP_COUNT];        //  the role's permissions on the service asked
    bool event_read;                //  the role's read on `event` (sees a draft)
} ev_access_t;

//  The answers of ev_perm_decide.
#define EV_ALLOW        0           //  go ahead
#define EV_HIDDEN       404         //  the caller may not know the event exists
#define EV_FORBIDDEN    403         //  the caller sees the event but may not do this

//  Decides whether `access`'s caller may do `op` on `service` of the
//  event. Staff may do everything; a role does what its permissions say;
//  anyone reads a published event and its tickets, tracks, sessions,
//  speakers, sponsors and microlocations (not its orders: a buyer's own
//  order is the orders handler's business). A caller who may not see the
//  event (a draft without a role that reads it) gets EV_HIDDEN, whatever
//  the operation. Returns EV_ALLOW, EV_HIDDEN or EV_FORBIDDEN.
int ev_perm_decide (const ev_access_t *access, ev_service_t service, ev_op_t op);

//  Names as the API and the schema spell them. _parse returns 0 and the
//  value, or -1 for an unknown name (NULL included). _name never fails
//  for a value of the enum ("" for EV_ROLE_NONE).
int ev_role_parse (const char *name, ev_role_t *role);
const char *ev_role_name (ev_role_t role);
int ev_service_parse (const char *name, ev_service_t *service);
const char *ev_service_name (ev_service_t service);
const char *ev_op_name (ev_op_t op);        //  "create", "read", ...

//  Self-test, run by ctest.
void ev_perm_test (bool verbose);

#endif
