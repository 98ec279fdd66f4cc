//  gw_metrics.h — the gateway's request metrics in Prometheus text format:
//  http_requests_total{route,method,code} and the latency histogram
//  http_request_duration_seconds{route,method}. Routes are the declared
//  templates (/api/v1/trackers/{id}), never raw paths, so the number of
//  series stays bounded.
#ifndef GW_METRICS_H_INCLUDED
#define GW_METRICS_H_INCLUDED

#include <stdbool.h>

typedef struct _gw_metrics_t gw_metrics_t;

gw_metrics_t *gw_metrics_new (void);
void gw_metrics_destroy (gw_metrics_t **self_p);

//  Counts one answered request. `route` and `method` are copied on first use.
void gw_metrics_record (gw_metrics_t *self, const char *route, const char *method,
                        int status, double seconds);

//  Renders every series. Returns a new string (the caller frees) or NULL.
char *gw_metrics_render (gw_metrics_t *self);

//  Self-test.
void gw_metrics_test (bool verbose);

#endif
