//  auth_limits.h — the auth service's sizes, counts and times (the
//  platform's are in shared/tl_limits.h). Private to services/auth.
#ifndef AUTH_LIMITS_H_INCLUDED
#define AUTH_LIMITS_H_INCLUDED

#define AUTH_PASSWORD_MIN          12       //  characters
#define AUTH_PASSWORD_MAX          128
#define AUTH_TOKEN_BYTES           32       //  session tokens and mailed codes
#define AUTH_TOKEN_TEXT_LEN        43       //  base64url, no padding
#define AUTH_SESSION_IDLE_DAYS     30       //  a session unused this long ends
#define AUTH_SESSION_TOUCH_SEC     60       //  last_used_at written at most this often
#define AUTH_MAX_SESSIONS_PER_USER 100      //  the oldest end beyond this
#define AUTH_TOPIC_USER_CHANGED    "auth.user.changed"  //  broadcast: {user_id}
#define AUTH_VERIFY_CODE_HOURS     24
#define AUTH_RESET_CODE_MINUTES    30
#define AUTH_THROTTLE_FAILURES     10       //  failures on an account from one address: 429
#define AUTH_THROTTLE_IP_FAILURES  30       //  ... from one address (offices share one)
#define AUTH_BACKOFF_AFTER         20       //  ... on an account from all: then a wait
#define AUTH_BACKOFF_MAX_SEC       300      //  that doubles with each failure, up to this
#define AUTH_THROTTLE_WINDOW_SEC   (15 * 60)
#define AUTH_REQUESTS_PER_ADDRESS  100      //  registrations, resets from one address per window
#define AUTH_REQUESTS_PER_EMAIL    5        //  ... naming one email address
#define AUTH_HASHES_DEFAULT        2        //  argon2id hashes at once (64 MiB each); no waiting
#define AUTH_HASHES_MAX            64

#endif
