//! The automator's MongoDB state: what it knows of each lead (`automation_leads`), the
//! executions (`automation_executions`, unique on the execution key), and the delivery queue
//! (`webhook_deliveries`). A batch's leads, executions and queued deliveries are written in one
//! MongoDB transaction, before its records and offsets commit in the Kafka transaction; an
//! execution key can therefore be taken once, ever, and a delivery exists exactly when its
//! execution does.

use std::collections::HashMap;

use futures::TryStreamExt;
use leadflow_core::contract::records::RecordPosition;
use leadflow_core::store::documents::{
    AUTOMATION_EXECUTIONS, AUTOMATION_LEADS, AutomationLeadDoc, DeliveryDoc, ExecutionDoc,
    WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS, WebhookEndpointDoc,
};
use leadflow_core::store::mongo::{BatchCommit, StoreError};
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};

#[derive(Clone)]
pub struct AutomatorStore {
    client: Client,
    database: Database,
    pub leads: Collection<AutomationLeadDoc>,
    pub executions: Collection<ExecutionDoc>,
    pub endpoints: Collection<WebhookEndpointDoc>,
    pub deliveries: Collection<DeliveryDoc>,
}

/// A batch's writes.
#[derive(Default)]
pub struct BatchWrites {
    pub executions: Vec<ExecutionDoc>,
    pub deliveries: Vec<DeliveryDoc>,
    /// Each changed lead with the version it was read at (0 for a new one).
    pub leads: Vec<(AutomationLeadDoc, u64)>,
}

impl AutomatorStore {
    pub fn new(client: Client, database: &str) -> Self {
        let database = client.database(database);
        AutomatorStore {
            leads: database.collection(AUTOMATION_LEADS),
            executions: database.collection(AUTOMATION_EXECUTIONS),
            endpoints: database.collection(WEBHOOK_ENDPOINTS),
            deliveries: database.collection(WEBHOOK_DELIVERIES),
            database,
            client,
        }
    }

    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        let index = |keys: Document| IndexModel::builder().keys(keys).build();
        // A redone batch finds the executions its records made by their source.
        self.executions
            .create_index(index(doc! { "source.topic": 1, "source.partition": 1, "source.offset": 1 }))
            .await?;
        self.executions.create_index(index(doc! { "projectId": 1, "executedAtMs": -1 })).await?;
        // The dispatcher's look for due deliveries of its partitions, and the delivery log.
        self.deliveries
            .create_index(index(doc! { "state": 1, "partition": 1, "nextAttemptAtMs": 1 }))
            .await?;
        self.deliveries.create_index(index(doc! { "endpointId": 1, "createdAtMs": -1 })).await?;
        self.endpoints
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "projectId": 1, "_id": 1 })
                    .options(IndexOptions::builder().build())
                    .build(),
            )
            .await?;
        Ok(())
    }

    pub async fn load_leads(
        &self,
        keys: &[String],
    ) -> mongodb::error::Result<HashMap<String, AutomationLeadDoc>> {
        let found: Vec<AutomationLeadDoc> =
            self.leads.find(doc! { "_id": { "$in": keys } }).await?.try_collect().await?;
        Ok(found.into_iter().map(|d| (d.key.clone(), d)).collect())
    }

    /// The executions already recorded under any of `keys`.
    pub async fn executions_by_key(
        &self,
        keys: &[String],
    ) -> mongodb::error::Result<HashMap<String, ExecutionDoc>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let found: Vec<ExecutionDoc> =
            self.executions.find(doc! { "_id": { "$in": keys } }).await?.try_collect().await?;
        Ok(found.into_iter().map(|d| (d.key.clone(), d)).collect())
    }

    /// The executions whose trigger was read at one of `sources`, in no particular order.
    pub async fn executions_from(
        &self,
        sources: &[RecordPosition],
    ) -> mongodb::error::Result<Vec<ExecutionDoc>> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let any: Vec<Document> = sources
            .iter()
            .map(|s| doc! { "source.topic": &s.topic, "source.partition": s.partition, "source.offset": s.offset })
            .collect();
        self.executions.find(doc! { "$or": any }).await?.try_collect().await
    }

    /// The subscriptions named by `ids` (any project: the caller matches the project).
    pub async fn endpoints(
        &self,
        ids: &[String],
    ) -> mongodb::error::Result<HashMap<String, WebhookEndpointDoc>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let found: Vec<WebhookEndpointDoc> =
            self.endpoints.find(doc! { "_id": { "$in": ids } }).await?.try_collect().await?;
        Ok(found.into_iter().map(|d| (d.id.clone(), d)).collect())
    }

    /// Writes a batch in one transaction. A taken execution key or a lead changed since it was
    /// read is a [`StoreError::Conflict`]: the batch is redone from a fresh read.
    pub async fn save(&self, writes: BatchWrites) -> Result<(), StoreError> {
        let BatchWrites { executions, deliveries, leads } = writes;
        BatchCommit::default()
            .insert(AUTOMATION_EXECUTIONS, &executions)
            .insert(WEBHOOK_DELIVERIES, &deliveries)
            .replace_versioned(
                AUTOMATION_LEADS,
                leads.into_iter().map(|(lead, read)| (lead.key.clone(), lead, read)),
            )
            .commit(&self.client, &self.database)
            .await
    }
}
