//  event_limits.h — the event service's limits: sizes of the texts of an
//  event and its parts, and how many of each one event may hold. (The
//  platform's are in shared/tl_limits.h.)
#ifndef EVENT_LIMITS_H_INCLUDED
#define EVENT_LIMITS_H_INCLUDED

#include "tl_limits.h"

//  Events (Unicode characters; the schema checks the same bounds)
#define EV_NAME_MAX             200
#define EV_DESCRIPTION_MAX      10000
#define EV_LOCATION_MAX         500
//  An event lasts at most this long (starts_at .. ends_at)
#define EV_MAX_DURATION_DAYS    366
//  Event times lie between these years (RFC 3339 times from 1970)
#define EV_MIN_YEAR             1970
#define EV_MAX_YEAR             9999

//  Roles: how many people may hold a role on one event, how many invites
//  may wait on one event, and how long an invite's code lives
#define EV_MAX_ROLES_PER_EVENT      200
#define EV_MAX_INVITES_PER_EVENT    200
#define EV_INVITE_TTL_DAYS          7
#define EV_INVITE_KEEP_DAYS         30      //  a used or expired invite, then purged
#define EV_PURGE_BATCH              10000   //  rows one purge statement deletes
//  Events one user may create (counted under the user's lock)
#define EV_MAX_EVENTS_PER_USER  1000

//  Tickets and orders
#define EV_TICKET_NAME_MAX          200
#define EV_TICKET_DESCRIPTION_MAX   2000
#define EV_MAX_TICKET_QUANTITY      1000000
#define EV_MAX_TICKETS_PER_EVENT    100
#define EV_MAX_ORDER_ITEMS          20      //  tickets in one order
#define EV_ORDER_HOLD_MINUTES       15      //  a pending order holds its tickets
#define EV_PAYMENT_REFERENCE_MAX    200

//  The programme: tracks, sessions, speakers, sponsors, microlocations
#define EV_MAX_PARTS_PER_EVENT      1000    //  of each kind
#define EV_MAX_SESSION_SPEAKERS     50

//  A permission table in a PUT holds at most every role × service row
#define EV_PERM_ROWS_MAX        32

//  A job's call to the upload service (event.unref_uploads), and how many
//  references one such job lets go (the upload service takes 1 000 at once)
#define EV_UPLOAD_TIMEOUT_MS    10000
#define EV_UNREF_BATCH          1000

#endif
