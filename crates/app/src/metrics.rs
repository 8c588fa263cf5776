//! What an instance has done, for `/metrics` in the Prometheus text format: requests by
//! route and status with their latency, search time, background job rounds, and, read
//! when asked, how far the search index is behind the change feed and the outbox's
//! queue. Counted in memory, per instance, from its start.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when written).
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Counted {
    /// By route (as the router names it, `/services/{id}`), method and status.
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    search: Histogram,
    /// Rounds by job, and whether they went through.
    jobs: BTreeMap<(&'static str, bool), u64>,
}

/// The instance's counters. Shared by every clone of the application.
#[derive(Debug, Default)]
pub struct Metrics(Mutex<Counted>);

/// What `/metrics` reads when it is asked, beside the counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Readings {
    pub change_feed_seq: i64,
    pub index_seq: i64,
    pub indexed_services: u64,
    pub ready: bool,
    pub index_damaged: bool,
    pub outbox_pending: u64,
    pub outbox_failed: u64,
    pub outbox_sent: u64,
}

/// A label value with `\`, `"` and line breaks escaped, as the text format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    fn counted(&self) -> std::sync::MutexGuard<'_, Counted> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One request answered.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut c = self.counted();
        *c.requests.entry((route.to_owned(), method.to_owned(), status)).or_default() += 1;
        c.latency.entry(route.to_owned()).or_default().observe(seconds);
    }

    /// One search of the index.
    pub fn search(&self, seconds: f64) {
        self.counted().search.observe(seconds);
    }

    /// One round of a background job.
    pub fn job(&self, job: &'static str, ok: bool) {
        *self.counted().jobs.entry((job, ok)).or_default() += 1;
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self, r: &Readings) -> String {
        let c = self.counted();
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP kith_http_requests_total Requests answered, by route, method and status.\n");
        out.push_str("# TYPE kith_http_requests_total counter\n");
        for ((route, method, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "kith_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(route),
                label(method)
            );
        }
        out.push_str("# HELP kith_http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE kith_http_request_duration_seconds histogram\n");
        for (route, h) in &c.latency {
            h.write(&mut out, "kith_http_request_duration_seconds", &format!("route=\"{}\"", label(route)));
        }
        out.push_str("# HELP kith_search_duration_seconds Time the search index took to answer a search.\n");
        out.push_str("# TYPE kith_search_duration_seconds histogram\n");
        c.search.write(&mut out, "kith_search_duration_seconds", "");
        out.push_str("# HELP kith_job_runs_total Rounds of the background jobs, by job and outcome.\n");
        out.push_str("# TYPE kith_job_runs_total counter\n");
        for ((job, ok), n) in &c.jobs {
            let outcome = if *ok { "ok" } else { "failed" };
            let _ = writeln!(out, "kith_job_runs_total{{job=\"{job}\",outcome=\"{outcome}\"}} {n}");
        }
        let gauges: [(&str, &str, String); 6] = [
            ("kith_change_feed_seq", "The directory's last change.", r.change_feed_seq.to_string()),
            ("kith_index_seq", "The last change the search index has applied.", r.index_seq.to_string()),
            (
                "kith_index_lag_changes",
                "Changes the search index is behind the directory.",
                (r.change_feed_seq - r.index_seq).max(0).to_string(),
            ),
            ("kith_index_services", "Services the search index holds.", r.indexed_services.to_string()),
            ("kith_ready", "1 when the instance is ready (as /readyz says), else 0.", u8::from(r.ready).to_string()),
            (
                "kith_index_damaged",
                "1 when the search index was found damaged and is being rebuilt.",
                u8::from(r.index_damaged).to_string(),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out.push_str("# HELP kith_outbox_messages Messages in the outbox, by state.\n");
        out.push_str("# TYPE kith_outbox_messages gauge\n");
        for (state, n) in [("pending", r.outbox_pending), ("failed", r.outbox_failed), ("sent", r.outbox_sent)] {
            let _ = writeln!(out, "kith_outbox_messages{{state=\"{state}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counters_and_histograms_are_written_in_the_text_format() {
        let m = Metrics::default();
        m.request("/services/{id}", "GET", 200, 0.004);
        m.request("/services/{id}", "GET", 200, 0.3);
        m.request("/services/{id}", "GET", 404, 0.001);
        m.search(0.002);
        m.job("follow_feed", true);
        let text = m.render(&Readings { change_feed_seq: 10, index_seq: 7, ready: true, ..Readings::default() });
        assert!(text.contains("kith_http_requests_total{route=\"/services/{id}\",method=\"GET\",status=\"200\"} 2"));
        assert!(text.contains("kith_http_request_duration_seconds_bucket{route=\"/services/{id}\",le=\"0.005\"} 2"));
        assert!(text.contains("kith_http_request_duration_seconds_bucket{route=\"/services/{id}\",le=\"+Inf\"} 3"));
        assert!(text.contains("kith_http_request_duration_seconds_count{route=\"/services/{id}\"} 3"));
        assert!(text.contains("kith_search_duration_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("kith_job_runs_total{job=\"follow_feed\",outcome=\"ok\"} 1"));
        assert!(text.contains("kith_index_lag_changes 3"));
        assert!(text.contains("kith_ready 1"));
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
