//! What the receiver has been sent: every request as a [`Delivery`], the counters
//! `/__admin/stats` reports, and the per-path request counts the faults go by. Time is passed
//! in, so the rules are tested without a server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Settings;
use super::faults::Faults;
use super::signature::{Secrets, SignedHeaders, Verification, verify};

/// One request as received, and how it was judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// 1, 2, … in arrival order, since start or the last reset.
    pub seq: u64,
    pub path: String,
    pub query: Option<String>,
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub webhook_signature: Option<String>,
    pub content_type: Option<String>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The body parsed, when it is JSON.
    pub json: Option<Value>,
    /// RFC 3339, UTC.
    pub received_at: String,
    pub received_at_ms: i64,
    /// What it was answered with.
    pub status: u16,
    pub verified: bool,
    pub verification: Verification,
}

/// Counters over requests, since start or the last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathStats {
    pub requests: u64,
    /// Answered 2xx.
    pub succeeded: u64,
    /// Answered anything else.
    pub failed: u64,
    /// Whose signature was valid.
    pub verified: u64,
    /// Distinct `webhook-id` values seen.
    pub distinct_webhook_ids: u64,
}

/// `GET /__admin/stats`: the totals, and the same per path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    #[serde(flatten)]
    pub total: PathStats,
    pub by_path: BTreeMap<String, PathStats>,
}

/// A request as the HTTP layer hands it over.
#[derive(Debug, Clone, Default)]
pub struct Received<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: SignedHeaders<'a>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// How to answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub latency: Duration,
}

#[derive(Debug)]
pub struct Inbox {
    start: Settings,
    faults: Faults,
    secrets: Secrets,
    /// Requests per path since the faults were set: what `failFirst` counts.
    since_faults: HashMap<String, u64>,
    deliveries: Vec<Delivery>,
    ids: HashSet<String>,
    ids_by_path: HashMap<String, HashSet<String>>,
    stats: Stats,
}

impl Inbox {
    pub fn new(settings: Settings) -> Self {
        Inbox {
            faults: settings.faults.clone(),
            secrets: settings.secrets.clone(),
            start: settings,
            since_faults: HashMap::new(),
            deliveries: Vec::new(),
            ids: HashSet::new(),
            ids_by_path: HashMap::new(),
            stats: Stats::default(),
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Replaces the faults and restarts the counts `failFirst` goes by; the records stay.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
        self.since_faults.clear();
    }

    /// Replaces the secrets; deliveries already recorded keep their verdict.
    pub fn set_secrets(&mut self, secrets: Secrets) {
        self.secrets = secrets;
    }

    /// Back to the start's faults and secrets, with nothing recorded.
    pub fn reset(&mut self) {
        *self = Inbox::new(self.start.clone());
    }

    /// Judges, records and counts one request received at `now`.
    pub fn receive(&mut self, request: Received<'_>, now: OffsetDateTime) -> Answer {
        let path = request.path.to_owned();
        let faults = self.faults.for_path(&path);
        let nth = self.since_faults.entry(path.clone()).or_default();
        *nth += 1;
        let answer =
            Answer { status: faults.answer(*nth), latency: Duration::from_millis(faults.latency_ms) };

        let secret = self.secrets.for_path(&path);
        let verification =
            verify(secret, request.headers, request.body, now.unix_timestamp(), self.start.tolerance_s);
        let verified = verification == Verification::Valid;
        let succeeded = (200..300).contains(&answer.status);
        let new_id = request.headers.id.map(|id| {
            let anywhere = self.ids.insert(id.to_owned());
            let on_path = self.ids_by_path.entry(path.clone()).or_default().insert(id.to_owned());
            (anywhere, on_path)
        });
        let (new_anywhere, new_on_path) = new_id.unwrap_or((false, false));
        let path_stats = self.stats.by_path.entry(path.clone()).or_default();
        for (stats, new_id) in [(&mut self.stats.total, new_anywhere), (path_stats, new_on_path)] {
            stats.requests += 1;
            stats.succeeded += u64::from(succeeded);
            stats.failed += u64::from(!succeeded);
            stats.verified += u64::from(verified);
            stats.distinct_webhook_ids += u64::from(new_id);
        }

        let owned = |v: Option<&str>| v.map(str::to_owned);
        self.deliveries.push(Delivery {
            seq: self.deliveries.len() as u64 + 1,
            path,
            query: owned(request.query),
            webhook_id: owned(request.headers.id),
            webhook_timestamp: owned(request.headers.timestamp),
            webhook_signature: owned(request.headers.signature),
            content_type: owned(request.content_type),
            body: String::from_utf8_lossy(request.body).into_owned(),
            json: serde_json::from_slice(request.body).ok(),
            received_at: now.format(&Rfc3339).unwrap_or_default(),
            received_at_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
            status: answer.status,
            verified,
            verification,
        });
        answer
    }

    /// Every delivery in arrival order, or only those to `path`.
    pub fn deliveries(&self, path: Option<&str>) -> Vec<&Delivery> {
        self.deliveries.iter().filter(|d| path.is_none_or(|p| d.path == p)).collect()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::ReceiverSecret;

    fn post<'a>(path: &'a str, id: Option<&'a str>) -> Received<'a> {
        Received {
            path,
            headers: SignedHeaders { id, ..SignedHeaders::default() },
            body: b"{}",
            ..Received::default()
        }
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn fail_first_counts_each_path_separately_and_restarts_when_faults_are_set() {
        let faults = Faults { fail_first: 2, ..Faults::default() };
        let mut inbox = Inbox::new(Settings { faults: faults.clone(), ..Settings::default() });
        let statuses: Vec<u16> = ["/a", "/a", "/b", "/a", "/b", "/b"]
            .iter()
            .map(|p| inbox.receive(post(p, None), t0()).status)
            .collect();
        assert_eq!(statuses, [500, 500, 500, 200, 500, 200]);
        inbox.set_faults(faults);
        assert_eq!(inbox.receive(post("/a", None), t0()).status, 500);
        assert_eq!(inbox.deliveries(None).len(), 7);
    }

    #[test]
    fn stats_count_answers_verdicts_and_distinct_ids_in_total_and_per_path() {
        let secret = ReceiverSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let faults = Faults {
            per_path: [("/b".to_owned(), Faults { status: 410, ..Faults::default() })].into(),
            ..Faults::default()
        };
        let mut inbox = Inbox::new(Settings { faults, ..Settings::with_secret(secret) });
        for (path, id) in [("/a", Some("m1")), ("/a", Some("m1")), ("/b", Some("m1")), ("/b", None)] {
            inbox.receive(post(path, id), t0());
        }
        let stats = inbox.stats();
        assert_eq!(
            stats.total,
            PathStats { requests: 4, succeeded: 2, failed: 2, verified: 0, distinct_webhook_ids: 1 }
        );
        assert_eq!(
            stats.by_path["/a"],
            PathStats { requests: 2, succeeded: 2, distinct_webhook_ids: 1, ..PathStats::default() }
        );
        assert_eq!(
            stats.by_path["/b"],
            PathStats { requests: 2, failed: 2, distinct_webhook_ids: 1, ..PathStats::default() }
        );
        let to_b = inbox.deliveries(Some("/b"));
        assert_eq!(to_b.iter().map(|d| (d.seq, d.status)).collect::<Vec<_>>(), [(3, 410), (4, 410)]);
        assert_eq!(to_b[1].verification, Verification::MissingHeaders);
        assert_eq!(to_b[0].received_at, "2023-11-14T22:13:20Z");
        inbox.reset();
        assert_eq!((inbox.stats(), inbox.deliveries(None).len()), (&Stats::default(), 0));
        assert_eq!(inbox.faults().for_path("/b").status, 410);
    }
}
