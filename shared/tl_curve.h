//  tl_curve.h — CURVE security for mesh links, configured by environment.
//  Gateways are CURVE servers, peers CURVE clients; with no keys configured
//  both functions do nothing and links are plain TCP (private networks only).
//    gateway: TALLY_CURVE_SERVER_CERT  secret certificate file (zcert_save)
//             TALLY_CURVE_ALLOW_DIR    folder of peers' public certificates
//    peer:    TALLY_CURVE_CLIENT_CERT  secret certificate file
//             TALLY_CURVE_SERVER_PUBLIC the gateway's public certificate file
//  `tallyctl keygen NAME` writes a certificate pair.
#ifndef TL_CURVE_H_INCLUDED
#define TL_CURVE_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>

//  Makes `sock` (not yet bound) a CURVE server when configured, starting
//  the authenticator in *auth_p (the caller destroys it after the socket).
//  Returns 0, or TL_ECONFIG with the reason logged.
int tl_curve_server (zsock_t *sock, zactor_t **auth_p);

//  Makes `sock` (not yet connected) a CURVE client when configured.
//  Returns 0 or TL_ECONFIG.
int tl_curve_client (zsock_t *sock);

//  Self-test.
void tl_curve_test (bool verbose);

#endif
