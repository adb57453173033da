//! Where subscriptions and their deliveries live: MongoDB's `webhook_endpoints` and
//! `webhook_deliveries`, the documents the automator reads and writes too
//! (`leadflow_core::store::documents`). [`WebhookStore`] is the interface; [`MongoWebhookStore`]
//! is the one every replica and the automator share, and [`MemoryWebhookStore`] the same
//! behaviour in memory for handler tests. Every query names the project: another project's
//! subscription is never found.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::TryStreamExt;
use futures::future::BoxFuture;
use mongodb::bson::{self, Bson, doc};
use mongodb::{Client, Collection};

use leadflow_core::store::documents::{
    DeliveryDoc, DeliveryState, WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS, WebhookEndpointDoc,
};

/// The partition of the gateway's test deliveries, which no automator sends (never retried).
pub const TEST_PARTITION: i32 = -1;

#[derive(Debug, thiserror::Error)]
pub enum WebhookStoreError {
    /// MongoDB did not answer: the request is answered 503 and may be retried.
    #[error("the webhook store is unavailable: {0}")]
    Unavailable(String),
}

impl From<mongodb::error::Error> for WebhookStoreError {
    fn from(error: mongodb::error::Error) -> Self {
        WebhookStoreError::Unavailable(error.to_string())
    }
}

impl From<bson::ser::Error> for WebhookStoreError {
    fn from(error: bson::ser::Error) -> Self {
        WebhookStoreError::Unavailable(error.to_string())
    }
}

type Answer<'a, T> = BoxFuture<'a, Result<T, WebhookStoreError>>;

pub trait WebhookStore: Send + Sync + 'static {
    fn insert_endpoint(&self, endpoint: WebhookEndpointDoc) -> Answer<'_, ()>;
    /// The project's subscriptions, oldest first.
    fn endpoints(&self, project_id: &str) -> Answer<'_, Vec<WebhookEndpointDoc>>;
    fn endpoint(&self, project_id: &str, id: &str) -> Answer<'_, Option<WebhookEndpointDoc>>;
    fn count_endpoints(&self, project_id: &str) -> Answer<'_, u64>;
    /// Deletes the subscription and marks its pending deliveries `dropped`; `false` when the
    /// project has no such subscription.
    fn delete_endpoint(&self, project_id: &str, id: &str) -> Answer<'_, bool>;
    fn insert_delivery(&self, delivery: DeliveryDoc) -> Answer<'_, ()>;
    /// The subscription's deliveries, newest first.
    fn deliveries(&self, project_id: &str, endpoint_id: &str, limit: u32) -> Answer<'_, Vec<DeliveryDoc>>;
    /// Enables the subscription (clearing why and since when it was disabled or failing) and
    /// requeues its undelivered deliveries, due at `now_ms`: the count requeued, `None` when
    /// the project has no such subscription. Test deliveries are never requeued: no automator
    /// sends them.
    fn replay(&self, project_id: &str, endpoint_id: &str, now_ms: i64) -> Answer<'_, Option<u64>>;
}

#[derive(Clone)]
pub struct MongoWebhookStore {
    endpoints: Collection<WebhookEndpointDoc>,
    deliveries: Collection<DeliveryDoc>,
}

impl MongoWebhookStore {
    pub fn new(client: Client, database: &str) -> Self {
        let database = client.database(database);
        MongoWebhookStore {
            endpoints: database.collection(WEBHOOK_ENDPOINTS),
            deliveries: database.collection(WEBHOOK_DELIVERIES),
        }
    }
}

fn state(state: DeliveryState) -> Bson {
    bson::to_bson(&state).expect("a delivery state is a string")
}

impl WebhookStore for MongoWebhookStore {
    fn insert_endpoint(&self, endpoint: WebhookEndpointDoc) -> Answer<'_, ()> {
        Box::pin(async move {
            self.endpoints.insert_one(endpoint).await?;
            Ok(())
        })
    }

    fn endpoints(&self, project_id: &str) -> Answer<'_, Vec<WebhookEndpointDoc>> {
        let filter = doc! { "projectId": project_id };
        Box::pin(async move {
            Ok(self
                .endpoints
                .find(filter)
                .sort(doc! { "createdAtMs": 1, "_id": 1 })
                .await?
                .try_collect()
                .await?)
        })
    }

    fn endpoint(&self, project_id: &str, id: &str) -> Answer<'_, Option<WebhookEndpointDoc>> {
        let filter = doc! { "_id": id, "projectId": project_id };
        Box::pin(async move { Ok(self.endpoints.find_one(filter).await?) })
    }

    fn count_endpoints(&self, project_id: &str) -> Answer<'_, u64> {
        let filter = doc! { "projectId": project_id };
        Box::pin(async move { Ok(self.endpoints.count_documents(filter).await?) })
    }

    fn delete_endpoint(&self, project_id: &str, id: &str) -> Answer<'_, bool> {
        let (project_id, id) = (project_id.to_owned(), id.to_owned());
        Box::pin(async move {
            let deleted = self.endpoints.delete_one(doc! { "_id": &id, "projectId": &project_id }).await?;
            if deleted.deleted_count == 0 {
                return Ok(false);
            }
            self.deliveries
                .update_many(
                    doc! { "endpointId": &id, "projectId": &project_id, "state": state(DeliveryState::Pending) },
                    doc! { "$set": { "state": state(DeliveryState::Dropped) } },
                )
                .await?;
            Ok(true)
        })
    }

    fn insert_delivery(&self, delivery: DeliveryDoc) -> Answer<'_, ()> {
        Box::pin(async move {
            self.deliveries.insert_one(delivery).await?;
            Ok(())
        })
    }

    fn deliveries(&self, project_id: &str, endpoint_id: &str, limit: u32) -> Answer<'_, Vec<DeliveryDoc>> {
        let filter = doc! { "endpointId": endpoint_id, "projectId": project_id };
        Box::pin(async move {
            Ok(self
                .deliveries
                .find(filter)
                .sort(doc! { "createdAtMs": -1, "_id": -1 })
                .limit(i64::from(limit))
                .await?
                .try_collect()
                .await?)
        })
    }

    fn replay(&self, project_id: &str, endpoint_id: &str, now_ms: i64) -> Answer<'_, Option<u64>> {
        let (project_id, id) = (project_id.to_owned(), endpoint_id.to_owned());
        Box::pin(async move {
            let enabled = self
                .endpoints
                .update_one(
                    doc! { "_id": &id, "projectId": &project_id },
                    doc! { "$set": {
                        "enabled": true, "disabledReason": Bson::Null, "disabledAtMs": Bson::Null,
                        "failingSinceMs": Bson::Null,
                    } },
                )
                .await?;
            if enabled.matched_count == 0 {
                return Ok(None);
            }
            let requeued = self
                .deliveries
                .update_many(
                    doc! {
                        "endpointId": &id, "projectId": &project_id,
                        "state": { "$in": [state(DeliveryState::Pending), state(DeliveryState::Failed)] },
                        "partition": { "$ne": TEST_PARTITION },
                    },
                    doc! { "$set": {
                        "state": state(DeliveryState::Pending), "nextAttemptAtMs": now_ms,
                        "scheduledAttempts": 0,
                    } },
                )
                .await?;
            Ok(Some(requeued.matched_count))
        })
    }
}

/// The same contract in memory.
#[derive(Default)]
pub struct MemoryWebhookStore {
    endpoints: Mutex<HashMap<String, WebhookEndpointDoc>>,
    pub deliveries: Mutex<HashMap<String, DeliveryDoc>>,
}

fn ready<'a, T: Send + 'a>(value: T) -> Answer<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl WebhookStore for MemoryWebhookStore {
    fn insert_endpoint(&self, endpoint: WebhookEndpointDoc) -> Answer<'_, ()> {
        self.endpoints.lock().unwrap().insert(endpoint.id.clone(), endpoint);
        ready(())
    }

    fn endpoints(&self, project_id: &str) -> Answer<'_, Vec<WebhookEndpointDoc>> {
        let mut found: Vec<WebhookEndpointDoc> =
            self.endpoints.lock().unwrap().values().filter(|e| e.project_id == project_id).cloned().collect();
        found.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        ready(found)
    }

    fn endpoint(&self, project_id: &str, id: &str) -> Answer<'_, Option<WebhookEndpointDoc>> {
        ready(self.endpoints.lock().unwrap().get(id).filter(|e| e.project_id == project_id).cloned())
    }

    fn count_endpoints(&self, project_id: &str) -> Answer<'_, u64> {
        ready(self.endpoints.lock().unwrap().values().filter(|e| e.project_id == project_id).count() as u64)
    }

    fn delete_endpoint(&self, project_id: &str, id: &str) -> Answer<'_, bool> {
        let mut endpoints = self.endpoints.lock().unwrap();
        if endpoints.get(id).is_none_or(|e| e.project_id != project_id) {
            return ready(false);
        }
        endpoints.remove(id);
        for delivery in self.deliveries.lock().unwrap().values_mut() {
            if delivery.endpoint_id == id && delivery.state == DeliveryState::Pending {
                delivery.state = DeliveryState::Dropped;
            }
        }
        ready(true)
    }

    fn insert_delivery(&self, delivery: DeliveryDoc) -> Answer<'_, ()> {
        self.deliveries.lock().unwrap().insert(delivery.id.clone(), delivery);
        ready(())
    }

    fn deliveries(&self, project_id: &str, endpoint_id: &str, limit: u32) -> Answer<'_, Vec<DeliveryDoc>> {
        let mut found: Vec<DeliveryDoc> = self
            .deliveries
            .lock()
            .unwrap()
            .values()
            .filter(|d| d.endpoint_id == endpoint_id && d.project_id == project_id)
            .cloned()
            .collect();
        found.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        found.truncate(limit as usize);
        ready(found)
    }

    fn replay(&self, project_id: &str, endpoint_id: &str, now_ms: i64) -> Answer<'_, Option<u64>> {
        let mut endpoints = self.endpoints.lock().unwrap();
        let Some(endpoint) = endpoints.get_mut(endpoint_id).filter(|e| e.project_id == project_id) else {
            return ready(None);
        };
        endpoint.enabled = true;
        endpoint.disabled_reason = None;
        endpoint.disabled_at_ms = None;
        endpoint.failing_since_ms = None;
        let mut requeued = 0;
        for delivery in self.deliveries.lock().unwrap().values_mut() {
            let undelivered = matches!(delivery.state, DeliveryState::Pending | DeliveryState::Failed);
            if delivery.endpoint_id == endpoint_id
                && delivery.project_id == project_id
                && undelivered
                && delivery.partition != TEST_PARTITION
            {
                delivery.state = DeliveryState::Pending;
                delivery.next_attempt_at_ms = now_ms;
                delivery.scheduled_attempts = 0;
                requeued += 1;
            }
        }
        ready(Some(requeued))
    }
}
