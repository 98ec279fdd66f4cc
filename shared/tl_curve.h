//  tl_curve.h — CURVE security and identity for mesh links, configured by
//  environment. Gateways are CURVE servers, peers CURVE clients. A peer's
//  identity is bound to its key: each public certificate in the allow
//  folder carries a "peer" property (`tallyctl keygen NAME --peer
//  service:auth|operator|gateway`) that the gateway reads on every message.
//  Without keys, links are plain TCP and identities are claimed, not
//  proven: a gateway allows that only on loopback (or ipc/inproc), or with
//  TALLY_MESH_INSECURE=1, which it logs loudly.
//    gateway: TALLY_CURVE_SERVER_CERT  secret certificate file (zcert_save)
//             TALLY_CURVE_ALLOW_DIR    folder of peers' public certificates
//    peer:    TALLY_CURVE_CLIENT_CERT  secret certificate file
//             TALLY_CURVE_SERVER_PUBLIC the gateway's public certificate file
//  `tallyctl keygen NAME` writes a certificate pair.
#ifndef TL_CURVE_H_INCLUDED
#define TL_CURVE_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>

//  Makes `sock` (to be bound at `endpoint`) a CURVE server when
//  configured, starting the authenticator in *auth_p (the caller destroys
//  it after the socket). Returns 0, or TL_ECONFIG with the reason logged
//  (bad keys; no keys on an endpoint off loopback without
//  TALLY_MESH_INSECURE=1).
int tl_curve_server (zsock_t *sock, const char *endpoint, zactor_t **auth_p);

//  Whether `endpoint` can only be reached from this machine.
bool tl_curve_endpoint_local (const char *endpoint);

//  Whether `identity` names a peer: service:<name> (at most
//  TL_MAX_NAME_LEN), operator or gateway.
bool tl_curve_valid_peer (const char *identity);

//  The identity this process claims on an insecure mesh (service:<name>,
//  operator): sent as `peer` on its requests. Borrowed; NULL until set.
//  With CURVE the gateway ignores claims and reads the key's.
void tl_curve_set_peer (const char *identity);
const char *tl_curve_peer (void);

//  Makes `sock` (not yet connected) a CURVE client when configured.
//  Returns 0 or TL_ECONFIG.
int tl_curve_client (zsock_t *sock);

//  Self-test.
void tl_curve_test (bool verbose);

#endif
