//  gw_metrics.c — request counters and latency histograms.
#include "gw_metrics.h"

#include <czmq.h>

static const double s_bounds [] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define S_BUCKETS (sizeof s_bounds / sizeof s_bounds [0])

typedef struct {
    char *route;
    char *method;
    uint64_t buckets [S_BUCKETS];       //  non-cumulative; summed when rendered
    uint64_t count;
    double sum;
    uint64_t codes [600];
} s_series_t;

struct _gw_metrics_t {
    zhashx_t *series;                   //  "method route" → s_series_t
};

static void
s_series_free (void **item)
{
    s_series_t *series = (s_series_t *) *item;
    if (series) {
        free (series->route);
        free (series->method);
        free (series);
        *item = NULL;
    }
}

gw_metrics_t *
gw_metrics_new (void)
{
    gw_metrics_t *self = calloc (1, sizeof *self);
    if (self && !(self->series = zhashx_new ())) {
        free (self);
        return NULL;
    }
    if (self)
        zhashx_set_destructor (self->series, s_series_free);
    return self;
}

void
gw_metrics_destroy (gw_metrics_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zhashx_destroy (&(*self_p)->series);
        free (*self_p);
        *self_p = NULL;
    }
}

void
gw_metrics_record (gw_metrics_t *self, const char *route, const char *method,
                   int status, double seconds)
{
    //  Only known methods become labels: a client must not be able to
    //  mint series (and memory) with made-up ones.
    static const char *known [] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };
    const char *label = "other";
    for (size_t i = 0; i < sizeof known / sizeof known [0]; i++)
        if (strcmp (method, known [i]) == 0)
            label = known [i];
    method = label;
    char key [512];
    snprintf (key, sizeof key, "%s %s", method, route);
    s_series_t *series = (s_series_t *) zhashx_lookup (self->series, key);
    if (!series) {
        series = calloc (1, sizeof *series);
        if (!series)
            return;
        series->route = strdup (route);
        series->method = strdup (method);
        zhashx_insert (self->series, key, series);
    }
    size_t b = 0;
    while (b < S_BUCKETS && seconds > s_bounds [b])
        b++;
    if (b < S_BUCKETS)
        series->buckets [b]++;
    series->count++;
    series->sum += seconds;
    if (status >= 100 && status < 600)
        series->codes [status]++;
}

char *
gw_metrics_render (gw_metrics_t *self)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    fprintf (out, "# HELP http_requests_total HTTP requests answered, by route, method and status.\n"
                  "# TYPE http_requests_total counter\n");
    for (s_series_t *s = (s_series_t *) zhashx_first (self->series); s;
         s = (s_series_t *) zhashx_next (self->series))
        for (int code = 100; code < 600; code++)
            if (s->codes [code])
                fprintf (out, "http_requests_total{route=\"%s\",method=\"%s\",code=\"%d\"} %" PRIu64 "\n",
                         s->route, s->method, code, s->codes [code]);
    fprintf (out, "# HELP http_request_duration_seconds Time from request to response.\n"
                  "# TYPE http_request_duration_seconds histogram\n");
    for (s_series_t *s = (s_series_t *) zhashx_first (self->series); s;
         s = (s_series_t *) zhashx_next (self->series)) {
        uint64_t cumulative = 0;
        for (size_t b = 0; b < S_BUCKETS; b++) {
            cumulative += s->buckets [b];
            fprintf (out, "http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                     s->route, s->method, s_bounds [b], cumulative);
        }
        fprintf (out, "http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
                      "http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n"
                      "http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %" PRIu64 "\n",
                 s->route, s->method, s->count, s->route, s->method, s->sum,
                 s->route, s->method, s->count);
    }
    fclose (out);
    return text;
}

void
gw_metrics_test (bool verbose)
{
    gw_metrics_t *metrics = gw_metrics_new ();
    assert (metrics);
    gw_metrics_record (metrics, "/healthz", "GET", 200, 0.0002);
    gw_metrics_record (metrics, "/healthz", "GET", 200, 0.3);
    gw_metrics_record (metrics, "/healthz", "GET", 503, 20);
    gw_metrics_record (metrics, "/healthz", "XQZRTAB", 405, 0.001);
    gw_metrics_record (metrics, "/healthz", "ABCDEFG", 405, 0.001);
    char *text = gw_metrics_render (metrics);
    assert (text);
    assert (strstr (text, "http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 2\n"));
    assert (strstr (text, "code=\"503\"} 1\n"));
    assert (strstr (text, "le=\"0.0005\"} 1\n"));
    assert (strstr (text, "le=\"0.5\"} 2\n"));
    assert (strstr (text, "le=\"+Inf\"} 3\n"));
    assert (strstr (text, "http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\"} 3\n"));
    assert (strstr (text, "method=\"other\",code=\"405\"} 2\n"));
    assert (!strstr (text, "XQZRTAB"));
    free (text);
    gw_metrics_destroy (&metrics);
    gw_metrics_destroy (&metrics);
    if (verbose)
        printf ("(metrics ok) ");
}
