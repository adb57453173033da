//! Ranking leads by their score as of now, decayed, without reading every lead. Pure: the walk
//! in [`crate::read::read_store::ReadStore::ranked`] feeds it leads in the order of the score the
//! read model stores, and it says when the rest can no longer make the page.
//!
//! Why that order is enough: decay never raises a score, and the stored score is the score as of
//! the lead's newest event, or lower where the decay pass announced a drop. So the score as of now
//! ([`rank_score`]) is at most the stored score, and once the page's last lead ranks strictly above
//! the stored score of the next unread lead, no unread lead can displace it (a threshold
//! algorithm with one sorted list). A walk reads the leads whose stored score is at least the
//! page's lowest score as of now: the leads the page shows, those ranked above it, and the ones
//! that decayed from above to below it since they were stored.

use std::cmp::Ordering;

use time::OffsetDateTime;

use leadflow_core::model::read_model::Scoring;
use leadflow_core::model::scoring::{self, ScoringRules};

use crate::read::read_store::{ScoreState, StoredLead};

/// The score at `now` under `rules`' decay: the scorer's stored score decayed since its newest
/// event when the scorer's state is known, else the read model's.
pub fn effective_score(
    rules: &ScoringRules,
    scoring: &Scoring,
    state: Option<&ScoreState>,
    now: OffsetDateTime,
) -> f64 {
    let (score, as_of) = match state.and_then(|s| Some((s.score, s.as_of?))) {
        Some(stored) => stored,
        None => (scoring.score, scoring.last_event_at),
    };
    scoring::decayed_score(score, as_of, now, &rules.decay)
}

/// What a lead ranks by: its [`effective_score`], but never above the score the read model
/// stores (0 when unscored). The cap holds the walk's bound when the scorer is ahead of the
/// read model: such a lead ranks by the score the read model has, until the read model catches
/// up.
pub fn rank_score(
    rules: &ScoringRules,
    lead: &StoredLead,
    state: Option<&ScoreState>,
    now: OffsetDateTime,
) -> f64 {
    match &lead.view.scoring {
        Some(scoring) => effective_score(rules, scoring, state, now).min(lead.score),
        None => 0.0,
    }
}

/// A lead and the score it ranks by.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub lead: StoredLead,
    pub score: f64,
}

impl Ranked {
    fn id(&self) -> &str {
        self.lead.view.lead_id()
    }
}

/// Highest score first, ties by lead id ascending: a total order, so a page boundary is exact.
fn rank_order(a: (f64, &str), b: (f64, &str)) -> Ordering {
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

/// One page of a ranking, gathered from leads read in stored-score order.
#[derive(Debug)]
pub struct RankedPage {
    want: usize,
    after: Option<(f64, String)>,
    found: Vec<Ranked>,
}

impl RankedPage {
    /// The first `want` leads that rank after `after` (a score and a lead id), or from the top.
    pub fn new(want: usize, after: Option<(f64, String)>) -> Self {
        RankedPage { want, after, found: Vec::with_capacity(want + 1) }
    }

    /// Takes leads read in stored-score order. `unread_at_most` is the stored score of the last
    /// lead read, which bounds every lead not read yet; `None` when none are left. Answers whether
    /// the page is complete.
    pub fn take(&mut self, read: impl IntoIterator<Item = Ranked>, unread_at_most: Option<f64>) -> bool {
        for ranked in read {
            let past_cursor = self
                .after
                .as_ref()
                .is_none_or(|(score, id)| rank_order((*score, id), (ranked.score, ranked.id())).is_lt());
            if past_cursor {
                self.found.push(ranked);
            }
        }
        self.found.sort_by(|a, b| rank_order((a.score, a.id()), (b.score, b.id())));
        self.found.truncate(self.want);
        match unread_at_most {
            None => true,
            // An unread lead with the bound's score and a lower id could still come before.
            Some(bound) => self.found.len() == self.want && self.found[self.want - 1].score > bound,
        }
    }

    /// The page, best first.
    pub fn into_leads(self) -> Vec<Ranked> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::contract::records::{LeadScored, Stage};
    use leadflow_core::model::read_model::LeadView;
    use proptest::prelude::*;

    fn lead(id: &str, stored: f64) -> StoredLead {
        let mut view = LeadView::new(id, 0);
        view.apply_scored(&LeadScored {
            project_id: "default".into(),
            lead_id: id.into(),
            event_id: "e".into(),
            event_type: "page_view".into(),
            delta: stored,
            score: stored,
            stage: Stage::Cold,
            previous_stage: None,
            event_timestamp: OffsetDateTime::UNIX_EPOCH,
            rules_version: "v1".into(),
            processed_at: OffsetDateTime::UNIX_EPOCH,
            late: false,
            reason: None,
            lead_version: Some(1),
            merged_into: None,
        });
        StoredLead { view, score: stored, last_activity_ms: 0 }
    }

    /// Walks `leads` (stored score, score now, id) in chunks of `chunk` as the store does, from
    /// `after`, and answers the page and how many leads it read.
    fn walk(
        leads: &[(f64, f64, String)],
        want: usize,
        after: Option<(f64, String)>,
        chunk: usize,
    ) -> (Vec<String>, usize) {
        let mut by_stored: Vec<&(f64, f64, String)> = leads.iter().collect();
        by_stored.sort_by(|a, b| rank_order((a.0, &a.2), (b.0, &b.2)));
        let mut page = RankedPage::new(want, after);
        let mut read = 0;
        for part in by_stored.chunks(chunk) {
            read += part.len();
            let bound = (read < by_stored.len()).then(|| part.last().unwrap().0);
            let ranked = part.iter().map(|(stored, now, id)| Ranked { lead: lead(id, *stored), score: *now });
            if page.take(ranked, bound) {
                break;
            }
        }
        (page.into_leads().iter().map(|r| r.id().to_owned()).collect(), read)
    }

    fn leads_strategy() -> impl Strategy<Value = Vec<(f64, f64, String)>> {
        // Scores on a coarse grid so that ties, in stored and in decayed scores, are common.
        prop::collection::vec((0u32..20, 0u32..=100), 0..60).prop_map(|pairs| {
            pairs
                .into_iter()
                .enumerate()
                .map(|(i, (stored, kept))| {
                    let stored = f64::from(stored) * 5.0;
                    (stored, (stored * f64::from(kept) / 100.0).round(), format!("lead-{i:02}"))
                })
                .collect()
        })
    }

    proptest! {
        /// Pages walked from each cursor equal the brute-force ranking by score now, whatever the
        /// chunk size: every lead once, in order.
        #[test]
        fn pages_equal_the_full_sort_by_score_now(leads in leads_strategy(), want in 1usize..7, chunk in 1usize..9) {
            let mut expected: Vec<&(f64, f64, String)> = leads.iter().collect();
            expected.sort_by(|a, b| rank_order((a.1, &a.2), (b.1, &b.2)));
            let expected: Vec<String> = expected.iter().map(|l| l.2.clone()).collect();
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let (page, _) = walk(&leads, want, after.clone(), chunk);
                seen.extend(page.iter().cloned());
                if page.len() < want { break; }
                let last = leads.iter().find(|l| &l.2 == page.last().unwrap()).unwrap();
                after = Some((last.1, last.2.clone()));
            }
            prop_assert_eq!(seen, expected);
        }
    }

    #[test]
    fn the_walk_stops_once_no_unread_lead_can_enter_the_page() {
        // Twenty leads that kept their score, stored 100 down to 5, then 80 that decayed to 0.
        let mut leads: Vec<(f64, f64, String)> = (0..20)
            .map(|i| (100.0 - 5.0 * f64::from(i), 100.0 - 5.0 * f64::from(i), format!("a{i:02}")))
            .collect();
        leads.extend((0..80).map(|i| (1.0, 0.0, format!("z{i:02}"))));
        let (page, read) = walk(&leads, 3, None, 5);
        assert_eq!(page, ["a00", "a01", "a02"]);
        assert_eq!(read, 5, "the 4th stored score (85) is below the 3rd score now (90)");
    }

    #[test]
    fn a_lead_that_decayed_below_others_ranks_below_them() {
        // Stored 100 but 18 now (quiet for weeks) against stored 30, kept.
        let leads = [(100.0, 18.0, "old".to_owned()), (30.0, 30.0, "new".to_owned())];
        assert_eq!(walk(&leads, 2, None, 1).0, ["new", "old"]);
    }

    #[test]
    fn equal_scores_at_the_bound_are_read_before_the_page_closes() {
        // The page's last score (10) equals the next stored score: that lead may have a lower id.
        let leads = [(20.0, 10.0, "b".to_owned()), (10.0, 10.0, "a".to_owned())];
        assert_eq!(walk(&leads, 1, None, 1).0, ["a"]);
    }

    #[test]
    fn the_rank_score_is_capped_at_the_stored_score_and_is_0_unscored() {
        let rules = ScoringRules::seeds();
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let stored = lead("x", 40.0);
        let ahead = ScoreState { score: 55.0, stage: Stage::Hot, as_of: Some(now), version: 2 };
        assert_eq!(
            rank_score(&rules, &stored, Some(&ahead), now),
            40.0,
            "the scorer is ahead of the read model"
        );
        let unscored = StoredLead { view: LeadView::new("y", 0), score: 0.0, last_activity_ms: 0 };
        assert_eq!(rank_score(&rules, &unscored, None, now), 0.0);
    }
}
