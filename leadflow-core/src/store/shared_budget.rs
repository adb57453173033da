//! A budget shared by every replica of a service, counted in MongoDB: an API's daily quota, a
//! CRM's rate limit. KEDA scales the enricher and the crm-sink to several replicas; a limit each
//! counts alone is spent once per replica. MongoDB is already where both keep state, so usage is
//! counted there, atomically, with no coordination service of our own.
//!
//! **Guarantee**: at most `limit` per window per deployment, however many replicas, as long as
//! they share the MongoDB database and the budget name (and are configured with the same limit
//! and shape: each replica checks the shared count against its own limit). For a
//! [`SharedBudget::rolling`] budget, "per window" means per ANY interval of the window's length
//! (see [`window`] for how, and what it costs in rate). Time comes from each replica's clock: a
//! replica whose clock is off counts against the window its clock says.
//!
//! **How**: one [`BudgetDoc`] per budget and window in the `budgets` collection,
//! `{_id: "<name>/<window id>", used, expiresAt}`. [`SharedBudget::take`] is a `findAndModify`
//! that adds `n` to `used` only where `used <= limit - n`. No read-then-write: MongoDB applies
//! the condition and the increment to one document atomically, so concurrent takers can never
//! together pass the limit. The first take of a window inserts its document; an insert that
//! collides on `_id` (error 11000, matched by code) means another taker made it first, and one
//! more conditional add decides: no match then means the window is exhausted.
//!
//! **MongoDB down**: `take` returns the driver's error. The caller waits and asks again; it
//! never spends unmetered, since an unmetered request is exactly what the budget exists to stop.
//! A budget that cannot be reached holds its callers up, as an exhausted one does.

pub mod window;

use mongodb::bson::{self, doc};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use time::{OffsetDateTime, UtcOffset};

use crate::store::documents::{BUDGETS, BudgetDoc};
use crate::store::mongo::is_duplicate_key;
pub use window::{BudgetShape, InvalidRolling, Window};

/// The answer to [`SharedBudget::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Taken; `remaining` is what the window still holds after this take (for a gauge: others
    /// may take it meanwhile).
    Granted { remaining: u64 },
    /// The window cannot give that much: ask again at `until`, the window's end (or earlier, to
    /// notice a raised limit).
    Exhausted { until: OffsetDateTime },
}

/// One named budget in a `budgets` collection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedBudget {
    collection: Collection<BudgetDoc>,
    name: String,
    shape: BudgetShape,
}

impl SharedBudget {
    /// The `budgets` collection of `database`, where every shared budget of the deployment is.
    pub fn collection_in(database: &Database) -> Collection<BudgetDoc> {
        database.collection(BUDGETS)
    }

    /// `limit` per calendar day at `offset` (UTC for nationalize.io; the account's time zone
    /// for HubSpot's daily limit).
    pub fn daily(collection: Collection<BudgetDoc>, name: &str, limit: u64, offset: UtcOffset) -> Self {
        Self::new(collection, name, BudgetShape::daily(limit, offset))
    }

    /// At most `limit` in any interval of length `window`, counted in `k` fixed sub-windows per
    /// `window`, each allowed `floor(limit / (k + 1))` (HubSpot's 190 per 10 s with `k = 10`:
    /// 17 per second, 170 per 10 s steady). Refused when that share would be 0.
    pub fn rolling(
        collection: Collection<BudgetDoc>,
        name: &str,
        limit: u64,
        window: std::time::Duration,
        k: u32,
    ) -> Result<Self, InvalidRolling> {
        Ok(Self::new(collection, name, BudgetShape::rolling(limit, window, k)?))
    }

    pub fn new(collection: Collection<BudgetDoc>, name: &str, shape: BudgetShape) -> Self {
        SharedBudget { collection, name: name.to_owned(), shape }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What one window holds: the daily limit, or a rolling budget's share per sub-window.
    pub fn limit_per_window(&self) -> u64 {
        self.shape.limit()
    }

    /// The end of the window `now` falls in: when an exhausted budget has room again.
    pub fn window_end(&self, now: OffsetDateTime) -> OffsetDateTime {
        self.shape.window_at(now).end
    }

    /// Creates the TTL index on `expiresAt` (a no-op when it exists). Expiry only tidies up:
    /// window ids never repeat, so an old document left behind changes nothing.
    pub async fn ensure_ttl_index(&self) -> mongodb::error::Result<()> {
        let index = IndexModel::builder()
            .keys(doc! { "expiresAt": 1 })
            .options(IndexOptions::builder().expire_after(std::time::Duration::ZERO).build())
            .build();
        self.collection.create_index(index).await.map(|_| ())
    }

    /// Takes `n` from the window `now` falls in, or says when that window ends. A take of more
    /// than a whole window holds is never granted. An error is MongoDB's (the take may or may not
    /// have counted): the caller must not go ahead unmetered (see the module doc).
    pub async fn take(&self, n: u64, now: OffsetDateTime) -> mongodb::error::Result<Grant> {
        let window = self.shape.window_at(now);
        let limit = self.shape.limit();
        let exhausted = Grant::Exhausted { until: window.end };
        if n > limit {
            return Ok(exhausted);
        }
        let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let id = BudgetDoc::id_of(&self.name, &window.id);
        let filter = doc! { "_id": &id, "used": { "$lte": as_i64(limit - n) } };
        let update = doc! { "$inc": { "used": as_i64(n) } };
        let granted = |budget: BudgetDoc| Grant::Granted {
            remaining: limit.saturating_sub(u64::try_from(budget.used).unwrap_or(0)),
        };
        if let Some(budget) = self.add_if_room(&filter, &update).await? {
            return Ok(granted(budget));
        }
        // No match: the window's document is full, or not there yet. Creating it with `n` taken
        // either succeeds, or collides on `_id` (error 11000) with a document that now exists,
        // made by another taker since the match or there all along; then one more conditional
        // add settles it: no match then means full.
        let first = BudgetDoc {
            id,
            used: as_i64(n),
            expires_at: bson_date(window.end + self.shape.keep_after_end()),
        };
        match self.collection.insert_one(&first).await {
            Ok(_) => return Ok(granted(first)),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e),
        }
        Ok(self.add_if_room(&filter, &update).await?.map_or(exhausted, granted))
    }

    /// The window's document after adding to `used`, if it was there with room. One
    /// `findAndModify`, not an upsert: the local MongoDB-wire server answers concurrent upserts
    /// of one new document with no document although it applied them, which would leave a take
    /// that counted unknown to its taker.
    async fn add_if_room(
        &self,
        filter: &bson::Document,
        update: &bson::Document,
    ) -> mongodb::error::Result<Option<BudgetDoc>> {
        self.collection
            .find_one_and_update(filter.clone(), update.clone())
            .return_document(ReturnDocument::After)
            .await
    }
}

fn bson_date(at: OffsetDateTime) -> bson::DateTime {
    let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
    bson::DateTime::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
}
