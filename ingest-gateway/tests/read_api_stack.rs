//! The read API against a real MongoDB on the local stack. The read model is written exactly as
//! the services write it, through the crm-sink's `LeadStore::save` (views built by applying
//! records) and the scorer's `LeadStore::save`, into a database of the test's own; the gateway
//! binary serves it from there (`LEADFLOW_MONGO__DATABASE`).

mod common;

use std::collections::BTreeSet;

use common::{Gateway, run_id};
use leadflow_core::contract::records::{
    EnrichmentStatus, LeadEnriched, LeadReviewed, LeadScored, ReviewDecision, Stage,
};
use leadflow_core::model::read_model::LeadView;
use leadflow_core::model::scoring::{self, ScoringEvent, ScoringRules};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::{Stack, eventually};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The leads every test starts from. `now` is when the test seeds them.
struct Seed {
    now: OffsetDateTime,
}

impl Seed {
    fn enriched(&self, id: &str, name: &str, status: EnrichmentStatus, ago: Duration) -> LeadEnriched {
        LeadEnriched {
            project_id: "default".into(),
            lead_id: id.into(),
            name: name.into(),
            email: Some(format!("{id}@example.com")),
            company: Some("Analytical Engines".into()),
            country_code: Some("GB".into()),
            country_name: Some("United Kingdom".into()),
            probability: Some(if status == EnrichmentStatus::Verified { 0.9 } else { 0.3 }),
            status,
            reason: None,
            provider: "nationalize".into(),
            enriched_at: self.now - ago,
        }
    }

    fn scored(&self, id: &str, score: f64, stage: Stage, ago: Duration) -> LeadScored {
        LeadScored {
            project_id: "default".into(),
            lead_id: id.into(),
            event_id: format!("{id}.last"),
            event_type: "page_view".into(),
            delta: 5.0,
            score,
            stage,
            previous_stage: None,
            event_timestamp: self.now - ago,
            rules_version: "v1".into(),
            processed_at: self.now - ago,
            late: false,
            reason: None,
            lead_version: Some(1),
            merged_into: None,
        }
    }

    fn reviewed(&self, id: &str, decision: ReviewDecision, ago: Duration) -> LeadReviewed {
        LeadReviewed {
            project_id: "default".into(),
            lead_id: id.into(),
            decision,
            reviewer: None,
            note: None,
            reviewed_at: self.now - ago,
        }
    }

    /// Seven leads (`ada` … `gus`); their expected orders are spelled out in the tests.
    fn views(&self) -> Vec<LeadView> {
        use EnrichmentStatus::{ToCheck, Verified};
        let h = Duration::hours;
        let mut views = Vec::new();
        let mut lead = |id: &str, build: &dyn Fn(&mut LeadView)| {
            let mut view = LeadView::new(id, 0);
            build(&mut view);
            views.push(view);
        };
        lead("ada", &|v| {
            v.apply_enriched(&self.enriched("ada", "Ada Lovelace", Verified, h(30)));
            v.apply_scored(&self.scored("ada", 120.0, Stage::Qualified, h(1)));
        });
        // To Check by enrichment, Verified by a person: the most recent activity is the review.
        lead("bob", &|v| {
            v.apply_enriched(&self.enriched("bob", "Bob Adams", ToCheck, h(40)));
            v.apply_scored(&self.scored("bob", 60.0, Stage::Hot, h(5)));
            v.apply_reviewed(&self.reviewed("bob", ReviewDecision::Verified, h(0)));
        });
        lead("cara", &|v| {
            v.apply_enriched(&self.enriched("cara", "Cara Mendes", ToCheck, h(20)));
            v.apply_scored(&self.scored("cara", 30.0, Stage::Warm, h(3)));
        });
        // Verified by enrichment, Rejected by a person.
        lead("dan", &|v| {
            v.apply_enriched(&self.enriched("dan", "Dan O'Neil", Verified, h(50)));
            v.apply_scored(&self.scored("dan", 5.0, Stage::Cold, h(10)));
            v.apply_reviewed(&self.reviewed("dan", ReviewDecision::Rejected, h(9)));
        });
        // Not scored yet.
        lead("eve", &|v| {
            v.apply_enriched(&self.enriched("eve", "Eve ADAMS", Verified, h(2)));
        });
        // Ties `bob` on score: the id breaks the tie.
        lead("fay", &|v| {
            v.apply_enriched(&self.enriched("fay", "Fay Wray", Verified, h(60)));
            v.apply_scored(&self.scored("fay", 60.0, Stage::Hot, h(7)));
        });
        lead("gus", &|v| {
            v.apply_enriched(&self.enriched("gus", "Gus Grissom", ToCheck, h(100)));
            v.apply_scored(&self.scored("gus", 22.5, Stage::Warm, h(90)));
        });
        views
    }
}

/// The leads by recency and by score, as the seed makes them.
const BY_RECENT: [&str; 7] = ["bob", "ada", "eve", "cara", "fay", "dan", "gus"];
const BY_SCORE: [&str; 7] = ["ada", "bob", "fay", "cara", "gus", "dan", "eve"];

struct Fixture {
    gateway: Gateway,
    now: OffsetDateTime,
    /// The scorer's state was written for `hal` (history) and `ada` (intelligence).
    t0: OffsetDateTime,
}

/// `ada`'s events as the scorer holds them: three in the last 24 hours, one 3 days ago.
fn ada_events(now: OffsetDateTime) -> Vec<(&'static str, &'static str, OffsetDateTime)> {
    vec![
        ("ada.old", "contract_signed", now - Duration::days(3)),
        ("ada.1", "page_view", now - Duration::hours(20)),
        ("ada.2", "signup", now - Duration::hours(2)),
        ("ada.3", "page_view", now - Duration::hours(1)),
    ]
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// The scorer's state of `id` after `events` in this order under the seeds' rules: its
/// document and its history entries.
fn scorer_state(
    id: &str,
    events: &[(&str, &str, OffsetDateTime)],
) -> (scorer::store::LeadDoc, Vec<scorer::store::HistoryDoc>) {
    leadflow_testkit::scorer_state::applied("default", id, events, &ScoringRules::seeds(), 32)
}

async fn fixture() -> Fixture {
    let stack = Stack::get();
    let database = run_id();
    let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: database.clone() };
    let client = leadflow_core::store::mongo::client(&mongo, "read-api-test").await.unwrap();
    let now = OffsetDateTime::now_utc();
    let seed = Seed { now };

    let sink = crm_sink::store::LeadStore::new(client.clone(), &database);
    sink.ensure_indexes().await.unwrap();
    sink.save(seed.views().into_iter().map(|v| (v, 0)).collect()).await.unwrap();

    // `hal`: in the scorer's state only (the read model has not caught up), with a late event:
    // the demo request at T3 was applied before the page view at T1.
    let t0 = OffsetDateTime::parse("2026-01-16T10:00:00Z", &Rfc3339).unwrap();
    let (hal, hal_history) = scorer_state(
        "hal",
        &[
            ("hal.demo", "demo_request", t0 + Duration::hours(3)),
            ("hal.view", "page_view", t0 + Duration::hours(1)),
        ],
    );
    assert_eq!((hal.score, hal.stage), (55.0, Stage::Hot));
    let (ada, ada_history) = scorer_state("ada", &ada_events(now));
    assert_eq!((ada.score, ada.stage), (130.0, Stage::Qualified));
    let scores = scorer::store::LeadStore::new(client, &database);
    scores.ensure_indexes().await.unwrap();
    scores.save([hal_history, ada_history].concat(), vec![(hal, 0), (ada, 0)]).await.unwrap();

    let env = [("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()), ("LEADFLOW_MONGO__DATABASE", database)];
    Fixture { gateway: Gateway::start_with(&stack, &env).await, now, t0 }
}

/// Whether `rules` score as the seeds' do, whatever their version.
fn same_scoring(rules: &ScoringRules) -> bool {
    let seeds = ScoringRules::seeds();
    (&rules.points, rules.stages, rules.decay, &rules.daily_caps)
        == (&seeds.points, seeds.stages, seeds.decay, &seeds.daily_caps)
}

fn ids(body: &Value) -> Vec<String> {
    body["leads"].as_array().unwrap().iter().map(|l| l["leadId"].as_str().unwrap().to_owned()).collect()
}

impl Fixture {
    fn hal_events(&self) -> Vec<ScoringEvent> {
        [
            ("hal.demo", "demo_request", self.t0 + Duration::hours(3)),
            ("hal.view", "page_view", self.t0 + Duration::hours(1)),
        ]
        .map(|(id, event_type, timestamp)| ScoringEvent {
            event_id: id.into(),
            event_type: event_type.into(),
            timestamp,
        })
        .to_vec()
    }

    fn ada_events(&self) -> Vec<ScoringEvent> {
        ada_events(self.now)
            .into_iter()
            .map(|(id, event_type, timestamp)| ScoringEvent {
                event_id: id.into(),
                event_type: event_type.into(),
                timestamp,
            })
            .collect()
    }

    async fn rules_in_force(&self) -> ScoringRules {
        let body = self.ok("/api/scoring-rules").await;
        serde_json::from_value(body["rules"].clone()).unwrap()
    }

    /// GETs `path` between two reads of the rules in force, until both name the same version
    /// (and so does the answer, where `version_of` finds one in it). Returns the answer, those
    /// rules, and the instants just before and after the read.
    async fn under_stable_rules(
        &self,
        path: &str,
        version_of: impl Fn(&Value) -> Option<String>,
    ) -> (Value, ScoringRules, OffsetDateTime, OffsetDateTime) {
        eventually(&format!("{path} under one rule set"), std::time::Duration::from_secs(30), || async {
            let rules = self.rules_in_force().await;
            let before = OffsetDateTime::now_utc();
            let body = self.ok(path).await;
            let after = OffsetDateTime::now_utc();
            let again = self.rules_in_force().await;
            let stable = again == rules && version_of(&body).is_none_or(|v| v == rules.version);
            Ok(stable.then_some((body, rules, before, after)))
        })
        .await
        .unwrap()
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.gateway.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    async fn list(&self, query: &str) -> Vec<String> {
        let body = self.ok(&format!("/api/leads{query}")).await;
        assert_eq!(body["nextCursor"], Value::Null, "{query}: one page");
        ids(&body)
    }

    /// Every page of `query` at `limit`, returning the ids in order and the number of pages.
    async fn all_pages(&self, query: &str, limit: u32) -> (Vec<String>, usize) {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let body = self.ok(&format!("/api/leads?limit={limit}{query}{after}")).await;
            pages += 1;
            let page = ids(&body);
            assert!(page.len() <= limit as usize, "{body}");
            seen.extend(page);
            match body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return (seen, pages),
            }
            assert!(pages < 20, "paging does not end: {seen:?}");
        }
    }
}

#[tokio::test]
async fn leads_filter_sort_and_page_through_every_lead_exactly_once() {
    let f = fixture().await;
    assert_eq!(f.list("").await, BY_RECENT, "the default order is the most recent activity first");
    assert_eq!(f.list("?sort=recent").await, BY_RECENT);
    assert_eq!(f.list("?sort=score").await, BY_SCORE, "score desc, ties (bob, fay) by id");

    assert_eq!(f.list("?status=Verified").await, ["bob", "ada", "eve", "fay"], "bob by review");
    assert_eq!(f.list("?status=To%20Check&sort=score").await, ["cara", "gus"]);
    assert_eq!(f.list("?status=Rejected").await, ["dan"], "rejected by review over a Verified enrichment");
    assert_eq!(f.list("?stage=hot&sort=score").await, ["bob", "fay"]);
    assert_eq!(f.list("?stage=qualified").await, ["ada"]);
    assert_eq!(f.list("?q=adams").await, ["bob", "eve"], "case-insensitive");
    assert_eq!(f.list("?q=%20ADA%20").await, ["bob", "ada", "eve"], "a substring, trimmed");
    assert_eq!(f.list("?q=o'n").await, ["dan"]);
    assert_eq!(f.list("?q=.*").await, Vec::<String>::new(), "a search is literal, not a pattern");
    assert_eq!(f.list("?status=Verified&stage=hot&q=wray").await, ["fay"], "filters combine");

    for (sort, expected) in [("score", BY_SCORE), ("recent", BY_RECENT)] {
        let (seen, pages) = f.all_pages(&format!("&sort={sort}"), 2).await;
        assert_eq!(seen, expected, "{sort}: every lead once, in order");
        assert_eq!(pages, 4, "{sort}: 7 leads at 2 a page");
        let (seen, pages) = f.all_pages(&format!("&sort={sort}&status=Verified"), 2).await;
        assert_eq!(pages, 2, "{sort}: {seen:?}");
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 4, "{sort}: {seen:?}");
    }
    // Six names hold an "a": three full pages of two.
    for (sort, expected) in [("score", BY_SCORE), ("recent", BY_RECENT)] {
        let (seen, pages) = f.all_pages(&format!("&sort={sort}&q=a"), 2).await;
        let with_a: Vec<&str> = expected.iter().copied().filter(|id| *id != "gus").collect();
        assert_eq!((seen, pages), (with_a.iter().map(|s| s.to_string()).collect(), 3), "{sort}");
    }
    let (seen, pages) = f.all_pages("&sort=score&stage=warm", 1).await;
    assert_eq!((seen, pages), (vec!["cara".to_owned(), "gus".to_owned()], 2));

    let first = f.ok("/api/leads?limit=2&sort=score").await;
    let summary = &first["leads"][0];
    assert_eq!(summary["leadId"], "ada");
    assert_eq!(summary["name"], "Ada Lovelace");
    assert_eq!(summary["email"], "ada@example.com");
    assert_eq!(summary["status"], "Verified");
    assert_eq!(summary["stage"], "qualified");
    assert_eq!(summary["score"], 120.0);
    assert_eq!(summary["lastActivityAt"], rfc3339(f.now - Duration::hours(1)));
    assert_eq!(summary["inCrm"], false);
    let cursor = first["nextCursor"].as_str().unwrap();
    // A cursor passed with the other sort is still a place to start from, not an error.
    let (status, body) = f.gateway.get(&format!("/api/leads?sort=recent&cursor={cursor}")).await;
    assert_eq!(status, 200, "a cursor of the other order: {body}");
    let (status, body) = f.gateway.get("/api/leads?cursor=bm90LWpzb24").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("cursor")));
    let (status, body) = f.gateway.get("/api/leads?stage=tepid").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("stage")));
}

#[tokio::test]
async fn a_lead_in_full_its_history_and_its_intelligence() {
    let f = fixture().await;
    // The rules in force are shared with every other test on the stack, which may replace them;
    // the expected scores are computed under the rules the gateway reports around each read.
    let (ada, rules, before, after) = f.under_stable_rules("/api/leads/ada", |_| None).await;
    assert_eq!(ada["leadId"], "ada");
    assert_eq!(ada["status"], "Verified");
    assert_eq!(ada["enrichment"]["countryName"], "United Kingdom");
    assert_eq!(ada["scoring"]["score"], 120.0);
    assert_eq!(ada["scoring"]["rulesVersion"], "v1", "the rules the score was made with");
    // The scorer's score (100 + 5 + 20 + 5 under the seeds' rules), decayed to the moment of the
    // request under the rules in force.
    let newest = f.ada_events().iter().map(|e| e.timestamp).max().unwrap();
    let effective = ada["scoring"]["effectiveScore"].as_f64().unwrap();
    let (low, high) = (
        scoring::decayed_score(130.0, newest, after, &rules.decay),
        scoring::decayed_score(130.0, newest, before, &rules.decay),
    );
    assert!((low..=high).contains(&effective), "{effective} not in {low}..={high}");
    if same_scoring(&rules) {
        assert_eq!(effective, 130.0);
    }
    assert_eq!(ada["review"], Value::Null);
    assert_eq!(ada["crm"]["syncedVersion"], 0);
    assert_eq!(ada["crm"]["lastDelivery"], Value::Null);
    let (bob, rules, before, after) = f.under_stable_rules("/api/leads/bob", |_| None).await;
    assert_eq!(
        (bob["status"].as_str(), bob["review"]["decision"].as_str()),
        (Some("Verified"), Some("Verified"))
    );
    assert_eq!(bob["enrichment"]["status"], "To Check");
    // No scorer state: the read model's score, decayed since its event 5 hours ago.
    let effective = bob["scoring"]["effectiveScore"].as_f64().unwrap();
    let last = f.now - Duration::hours(5);
    let (low, high) = (
        60.0 * scoring::decay_factor(after - last, &rules.decay),
        60.0 * scoring::decay_factor(before - last, &rules.decay),
    );
    assert!(low - 1e-6 <= effective && effective <= high + 1e-6, "{effective} not in {low}..={high}");
    if same_scoring(&rules) {
        assert_eq!(effective, 60.0, "within the 7-day grace");
    }

    let (status, body) = f.gateway.get("/api/leads/nobody").await;
    assert_eq!(
        (status, body["error"].as_str(), body["field"].as_str()),
        (404, Some("not_found"), Some("id"))
    );
    let (status, body) = f.gateway.get("/api/leads/hal").await;
    assert_eq!(status, 404, "no read-model document yet: {body}");
    let (status, body) = f.gateway.get("/api/leads/no%20pe").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("id")));

    let (history, rules, _, _) = f
        .under_stable_rules("/api/leads/hal/history", |h| h["rulesVersion"].as_str().map(str::to_owned))
        .await;
    assert_eq!(history["leadId"], "hal");
    assert_eq!(history["rulesVersion"], rules.version.as_str());
    let entries: Vec<(String, f64, f64, String, bool)> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["eventType"].as_str().unwrap().to_owned(),
                e["points"].as_f64().unwrap(),
                e["score"].as_f64().unwrap(),
                e["timestamp"].as_str().unwrap().to_owned(),
                e["late"].as_bool().unwrap(),
            )
        })
        .collect();
    let view_points = rules.points_for("page_view").unwrap_or(0.0);
    let demo_points = rules.points_for("demo_request").unwrap_or(0.0);
    let expected = scoring::history(&rules, &f.hal_events());
    assert_eq!(
        entries,
        [
            (
                "page_view".to_owned(),
                view_points,
                expected[0].score,
                rfc3339(f.t0 + Duration::hours(1)),
                true
            ),
            (
                "demo_request".to_owned(),
                demo_points,
                expected[1].score,
                rfc3339(f.t0 + Duration::hours(3)),
                false
            ),
        ],
        "event-timestamp order with a running total"
    );
    if same_scoring(&rules) {
        assert_eq!((entries[0].2, entries[1].2), (5.0, 55.0), "under the seeds' rules");
    }
    assert_eq!(
        history["entries"][1]["stage"],
        serde_json::to_value(rules.stage_for(expected[1].score)).unwrap()
    );
    let eve = f.ok("/api/leads/eve/history").await;
    assert_eq!(eve["entries"], json!([]), "a lead with no scorer state has no history");
    let (status, body) = f.gateway.get("/api/leads/nobody/history").await;
    assert_eq!((status, body["field"].as_str()), (404, Some("id")));

    let intelligence = f.ok("/api/leads/ada/intelligence").await;
    assert_eq!(intelligence["leadId"], "ada");
    assert_eq!(intelligence["velocity"], 3, "three events in the last 24 h, one 3 days ago");
    assert_eq!(intelligence["risk"], "low");
    assert_eq!(intelligence["nextAction"], "immediate_outreach");
    assert_eq!(intelligence["stage"], "qualified");
    assert_eq!(intelligence["lastEventAt"], rfc3339(f.now - Duration::hours(1)));
    let hal = f.ok("/api/leads/hal/intelligence").await;
    assert_eq!(
        (&hal["velocity"], &hal["risk"], &hal["nextAction"], &hal["stage"]),
        (&json!(0), &json!("high"), &json!("schedule_demo"), &json!("hot")),
        "hot and quiet since January: {hal}"
    );
    let (status, _) = f.gateway.get("/api/leads/nobody/intelligence").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_leaderboard_ranks_by_score_and_counts_by_stage() {
    let f = fixture().await;
    let board = f.ok("/api/leaderboard?limit=3").await;
    let top: Vec<&str> =
        board["top"].as_array().unwrap().iter().map(|l| l["leadId"].as_str().unwrap()).collect();
    assert_eq!(top, ["ada", "bob", "fay"]);
    assert_eq!(board["stages"], json!({"cold": 1, "warm": 2, "hot": 2, "qualified": 1}));
    assert_eq!(board["total"], 7, "every lead in the read model, scored or not");
    let all = f.ok("/api/leaderboard").await;
    assert_eq!(all["top"].as_array().unwrap().len(), 6, "unscored leads are not ranked");
    let (status, body) = f.gateway.get("/api/leaderboard?limit=0").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("limit")));
}

/// `sort=score` and the leaderboard rank by the score decayed to now, not the stored one. Sixty
/// leads stored at 90 but quiet for 60 days (about 6 now under the seeds) sort first by stored
/// score, so the walk has to read past them; `old`, stored at 100 and quiet for 40 days (about 18),
/// ranks below `new` at 30 and `mid` at 25 (about 21 after 10 days). Paging by score ranks every
/// page at the instant of the first, so each lead is shown once.
#[tokio::test]
async fn rankings_use_the_score_decayed_to_now() {
    let stack = Stack::get();
    let database = run_id();
    let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: database.clone() };
    let client = leadflow_core::store::mongo::client(&mongo, "read-api-test").await.unwrap();
    let seed = Seed { now: OffsetDateTime::now_utc() };
    let days = Duration::days;
    let mut leads: Vec<(String, f64, Duration)> = vec![
        ("old".into(), 100.0, days(40)),
        ("new".into(), 30.0, Duration::hours(1)),
        ("mid".into(), 25.0, days(10)),
    ];
    leads.extend((0..60).map(|i| (format!("stale-{i:02}"), 90.0, days(60))));
    let views = leads
        .iter()
        .map(|(id, score, ago)| {
            let mut view = LeadView::new(id, 0);
            view.apply_scored(&seed.scored(id, *score, Stage::Qualified, *ago));
            (view, 0)
        })
        .collect();
    let sink = crm_sink::store::LeadStore::new(client, &database);
    sink.ensure_indexes().await.unwrap();
    sink.save(views).await.unwrap();
    let env = [("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()), ("LEADFLOW_MONGO__DATABASE", database)];
    let f = Fixture { gateway: Gateway::start_with(&stack, &env).await, now: seed.now, t0: seed.now };

    // The order by score now under `rules` at `at`, computed here from what was seeded.
    let expected = |rules: &ScoringRules, at: OffsetDateTime| {
        let mut by_now: Vec<(f64, &str)> = leads
            .iter()
            .map(|(id, score, ago)| {
                (scoring::decayed_score(*score, seed.now - *ago, at, &rules.decay), id.as_str())
            })
            .collect();
        by_now.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        by_now
    };
    let (board, rules, before, after) = f.under_stable_rules("/api/leaderboard?limit=3", |_| None).await;
    let top: Vec<&str> =
        board["top"].as_array().unwrap().iter().map(|l| l["leadId"].as_str().unwrap()).collect();
    let at_before: Vec<&str> = expected(&rules, before).iter().take(3).map(|(_, id)| *id).collect();
    assert_eq!(top, at_before, "{board}");
    assert_eq!(at_before, expected(&rules, after).iter().take(3).map(|(_, id)| *id).collect::<Vec<_>>());
    if same_scoring(&rules) {
        assert_eq!(top, ["new", "mid", "old"], "the seeds' decay: {board}");
    }
    let old = &board["top"][2];
    assert_eq!(old["score"], 100.0, "the stored score stays as it was");
    let old_now = old["effectiveScore"].as_f64().unwrap();
    let bounds =
        [before, after].map(|at| scoring::decayed_score(100.0, seed.now - days(40), at, &rules.decay));
    assert!(bounds[1] <= old_now && old_now <= bounds[0], "{old_now} within {bounds:?}");

    let (pages, rules, before, _) = f.under_stable_rules("/api/leads?sort=score&limit=7", |_| None).await;
    let first = ids(&pages);
    let (mut seen, count) = f.all_pages("&sort=score", 7).await;
    assert_eq!(count, 9, "63 leads at 7 a page");
    let everything: Vec<String> = expected(&rules, before).iter().map(|(_, id)| id.to_string()).collect();
    assert_eq!(first, everything[..7], "the first page at the time it was read");
    assert_eq!(seen.len(), 63);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 63, "no lead twice: {seen:?}");
    seen.truncate(3);
    assert_eq!(seen, everything[..3]);
}
