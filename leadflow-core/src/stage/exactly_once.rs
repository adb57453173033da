//! Consume, transform, produce: exactly once from Kafka topics to others. A stage reads a
//! batch (one poll batch, up to `max_batch_records`), hands it to its [`BatchProcessor`], and
//! writes the processor's output records together with the batch's offsets in one Kafka
//! transaction (`send_offsets_to_transaction`). A crash anywhere before the commit leaves
//! nothing visible to `read_committed` readers and the offsets where they were, so the batch is
//! redone; after the commit both the records and the offsets are there. Nothing is lost or
//! written twice.
//!
//! Rebalances: the consumer is polled only between batches, so a revocation is served after the
//! batch in hand has been processed and committed (drain, commit, then give the partitions
//! up). The one exception is a processor that asks to pause (an API's rate limit): it may
//! wait for hours, so the consumer pauses its partitions and keeps polling to stay in the group,
//! and a rebalance during that wait abandons the uncommitted batch for the new owner to redo.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::contract::records::RecordPosition;
use crate::stage::config::ExactlyOnceConfig;
use crate::stage::kafka::{KafkaConfig, consumer_config, transactional_producer_config};
use crate::stage::metrics::StageMetrics;
use crate::stage::pause::PauseSignal;

/// The partitions this instance holds now, for work that must follow the assignment (e.g. a
/// periodic pass over the leads of those partitions).
pub type AssignedPartitions = Arc<std::sync::Mutex<std::collections::BTreeSet<i32>>>;

/// Whether the stage has joined its consumer group: it holds an assignment, or was given one
/// with nothing in it.
#[derive(Clone, Default)]
pub struct GroupMembership(Arc<std::sync::atomic::AtomicBool>);

impl GroupMembership {
    pub fn has_joined(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self, joined: bool) {
        self.0.store(joined, Ordering::SeqCst);
    }
}

/// One consumed record, owned, so a batch outlives the poll that read it.
#[derive(Debug, Clone)]
pub struct InputRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl InputRecord {
    pub fn position(&self) -> RecordPosition {
        RecordPosition { topic: self.topic.to_string(), partition: self.partition, offset: self.offset }
    }

    fn from_message(message: &BorrowedMessage<'_>) -> Self {
        InputRecord {
            topic: Arc::from(message.topic()),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
        }
    }
}

/// A record for the stage's transaction to write.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    pub topic: &'static str,
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Worth retrying the whole batch later, e.g. the schema registry is down.
    #[error("{0}")]
    Transient(String),
    /// The stage cannot go on.
    #[error("{0}")]
    Fatal(String),
}

/// A stage's work on one batch: turn input records into output records. It must put every
/// record somewhere (an output, or a dead letter), since the batch's offsets are committed with
/// whatever it returns.
pub trait BatchProcessor: Send + Sync {
    fn process(
        &self,
        batch: &[InputRecord],
        pause: &PauseSignal,
    ) -> impl Future<Output = Result<Vec<OutputRecord>, ProcessError>> + Send;

    /// How long the stage should go on gathering records before it hands over the next batch,
    /// however short its queue. A processor that spends a request budget per batch (the CRM's
    /// 190 requests per 10 s) asks for the time until its next request keeps to that budget's
    /// even pace, so that a steady stream is sent in fewer, fuller requests instead of running
    /// the budget dry and then stalling. Zero: take what has arrived and go.
    fn gather_for(&self) -> Duration {
        Duration::ZERO
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("cannot create the Kafka client: {0}")]
    Client(#[source] KafkaError),
    #[error("cannot subscribe to {topic}: {source}")]
    Subscribe { topic: String, source: KafkaError },
    /// Fatal for this producer, e.g. fenced by a newer instance with the same transactional id.
    #[error("fatal transaction error: {0}")]
    Fatal(String),
}

/// Why a batch did not commit, and what the loop does about it.
enum BatchInterrupt {
    /// The assignment changed while the batch waited: drop it, the new owner redoes it.
    Rebalance,
    Shutdown,
    /// Rewind to the batch's first offsets and try again after a backoff.
    Retry(String),
    Fatal(String),
}

/// Counts rebalances, so that the loop can tell that a batch it holds belongs to an assignment
/// that is gone, and feeds the lag gauge from librdkafka's statistics.
pub struct StageContext {
    generation: AtomicU64,
    /// Fires at every rebalance, so that a batch waiting on an outside limit learns of one even
    /// though its paused partitions deliver no message.
    rebalanced: watch::Sender<u64>,
    topics: Vec<String>,
    metrics: StageMetrics,
    assigned: AssignedPartitions,
    membership: GroupMembership,
}

impl StageContext {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

impl ClientContext for StageContext {
    fn stats(&self, statistics: Statistics) {
        for name in &self.topics {
            let Some(topic) = statistics.topics.get(name) else { continue };
            for (partition, stats) in &topic.partitions {
                // librdkafka reports -1 for the internal "unassigned" partition and for unknown lag.
                if *partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[name, &partition.to_string()])
                        .set(stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for StageContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.rebalanced.send_replace(generation);
        match rebalance {
            Rebalance::Revoke(partitions) => {
                self.metrics.rebalances.with_label_values(&["revoke"]).inc();
                let mut assigned = self.assigned.lock().expect("not poisoned");
                for element in partitions.elements() {
                    assigned.remove(&element.partition());
                }
                for element in partitions.elements() {
                    let _ = self
                        .metrics
                        .consumer_lag
                        .remove_label_values(&[element.topic(), &element.partition().to_string()]);
                }
                tracing::info!(partitions = %describe(partitions), "partitions revoked");
            }
            Rebalance::Assign(partitions) => {
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                self.assigned
                    .lock()
                    .expect("not poisoned")
                    .extend(partitions.elements().iter().map(|e| e.partition()));
                tracing::info!(partitions = %describe(partitions), "partitions assigned");
                // Ready only once the assignment is logged, so that readiness never runs ahead of it.
                self.membership.set(true);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // librdkafka keeps a partition's pause across a revoke and a new assignment, and the
        // batch that paused it was abandoned: a partition this instance is given must flow.
        if let Rebalance::Assign(partitions) = rebalance {
            if partitions.count() > 0
                && let Err(e) = consumer.resume(partitions)
            {
                tracing::warn!(error = %e, "cannot resume the assigned partitions");
            }
            self.metrics.paused.set(0);
        }
    }
}

fn describe(partitions: &TopicPartitionList) -> String {
    let ids: Vec<String> = partitions.elements().iter().map(|e| e.partition().to_string()).collect();
    ids.join(",")
}

/// The running stage: a consumer in the group and the transactional producer.
pub struct ExactlyOnceStage<'a, P> {
    pub kafka: &'a KafkaConfig,
    pub config: &'a ExactlyOnceConfig,
    /// Co-partitioned topics (keyed alike, same partition count), so that one instance sees
    /// everything about a key.
    pub input_topics: &'a [&'a str],
    pub processor: &'a P,
    pub metrics: StageMetrics,
    pub shutdown: CancellationToken,
    /// How long an in-flight batch may take to finish after shutdown is asked for.
    pub grace_period: Duration,
    /// Kept up to date with the assignment.
    pub assigned: AssignedPartitions,
    /// Set once the stage has joined its group, for `/readyz`.
    pub membership: GroupMembership,
}

const KAFKA_CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl<P: BatchProcessor> ExactlyOnceStage<'_, P> {
    /// Runs until shutdown (Ok) or a fatal error.
    pub async fn run(self) -> Result<(), StageError> {
        let context = StageContext {
            generation: AtomicU64::new(0),
            rebalanced: watch::Sender::new(0),
            topics: self.input_topics.iter().map(|t| (*t).to_owned()).collect(),
            metrics: self.metrics.clone(),
            assigned: self.assigned.clone(),
            membership: self.membership.clone(),
        };
        let mut consumer_cfg = consumer_config(self.kafka, &self.config.group_id);
        // Static membership: a restarted instance takes its partitions back at once, instead of
        // the group waiting out the dead member's session. A static member does not leave the
        // group when it stops, so its partitions move to the others once its session expires:
        // 10 s here rather than librdkafka's 45 s.
        consumer_cfg
            .set("statistics.interval.ms", "5000")
            .set("group.instance.id", self.config.instance())
            .set("session.timeout.ms", "10000");
        let consumer: StreamConsumer<StageContext> =
            consumer_cfg.create_with_context(context).map_err(StageError::Client)?;
        let transactional_id = self.config.transactional_id();
        let producer_cfg = if self.config.exactly_once {
            let mut cfg = transactional_producer_config(self.kafka, &transactional_id);
            cfg.set("transaction.timeout.ms", self.config.transaction_timeout.as_millis().to_string());
            cfg
        } else {
            crate::stage::kafka::producer_config(self.kafka)
        };
        let producer: FutureProducer = producer_cfg.create().map_err(StageError::Client)?;

        if self.config.exactly_once && !self.init_transactions(&producer).await? {
            return Ok(());
        }
        consumer
            .subscribe(self.input_topics)
            .map_err(|source| StageError::Subscribe { topic: self.input_topics.join(","), source })?;
        tracing::info!(
            topics = %self.input_topics.join(","),
            group = %self.config.group_id,
            transactional_id = %transactional_id,
            exactly_once = self.config.exactly_once,
            "consuming"
        );

        let mut pending = VecDeque::new();
        let mut backoff = self.config.retry_backoff;
        let mut backlog = false;
        loop {
            let (batch, generation) = match self.collect_batch(&consumer, &mut pending, backlog).await {
                None => break,
                Some(Ok(batch)) => batch,
                // e.g. fenced by another member with the same instance id: this one must go,
                // not stay ready and idle.
                Some(Err(reason)) => {
                    self.membership.set(false);
                    return Err(StageError::Fatal(format!("the consumer cannot go on: {reason}")));
                }
            };
            if batch.is_empty() {
                continue;
            }
            backlog = batch.len() >= self.config.max_batch_records.max(1);
            let started = std::time::Instant::now();
            let outcome = match self.process(&consumer, &batch, generation, &mut pending).await {
                Ok(outputs) => {
                    let processed = started.elapsed();
                    let committed = self.commit(&producer, &consumer, &batch, generation, outputs).await;
                    let commit = started.elapsed() - processed;
                    self.metrics
                        .batch_duration
                        .with_label_values(&["process"])
                        .observe(processed.as_secs_f64());
                    self.metrics.batch_duration.with_label_values(&["commit"]).observe(commit.as_secs_f64());
                    tracing::debug!(records = batch.len(), ?processed, ?commit, "batch done");
                    committed
                }
                Err(interrupt) => Err(interrupt),
            };
            match outcome {
                Ok(()) => backoff = self.config.retry_backoff,
                Err(BatchInterrupt::Rebalance) => {
                    pending.clear();
                    tracing::info!(
                        records = batch.len(),
                        "batch abandoned to a rebalance; the new owner redoes it"
                    );
                }
                Err(BatchInterrupt::Shutdown) => {
                    tracing::info!(
                        records = batch.len(),
                        "batch abandoned at shutdown; it is redone on restart"
                    );
                    break;
                }
                Err(BatchInterrupt::Retry(reason)) => {
                    tracing::warn!(records = batch.len(), error = %reason, retry_in = ?backoff, "batch failed; rewinding to retry");
                    rewind(&consumer, &batch, &pending);
                    pending.clear();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(BatchInterrupt::Fatal(reason)) => return Err(StageError::Fatal(reason)),
            }
        }
        // Leave the group now rather than at session timeout, so the partitions move at once.
        consumer.unsubscribe();
        Ok(())
    }

    /// Registers the transactional id with the broker, fencing any earlier producer with the
    /// same id and aborting its open transaction. Retried until the broker answers; `false`
    /// means shutdown came first.
    async fn init_transactions(&self, producer: &FutureProducer) -> Result<bool, StageError> {
        let mut delay = Duration::from_millis(500);
        loop {
            let p = producer.clone();
            let result = tokio::task::spawn_blocking(move || p.init_transactions(KAFKA_CALL_TIMEOUT))
                .await
                .expect("init_transactions does not panic");
            match result {
                Ok(()) => return Ok(true),
                Err(KafkaError::Transaction(e)) if e.is_fatal() => {
                    return Err(StageError::Fatal(e.to_string()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot initialise transactions; retrying")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => return Ok(false),
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Waits for a first record, then takes every record that has already arrived. Records kept
    /// from an earlier wait come first. `None` means shutdown.
    ///
    /// It waits the linger time for more only behind a `backlog` (the previous batch was full),
    /// or as long as the processor asks ([`BatchProcessor::gather_for`]): a short queue is
    /// processed at once, so a lone event is not held for a timer. Under load the batches still
    /// grow, because records pile up while the previous batch commits.
    async fn collect_batch(
        &self,
        consumer: &StreamConsumer<StageContext>,
        pending: &mut VecDeque<(InputRecord, u64)>,
        backlog: bool,
    ) -> Option<Result<(Vec<InputRecord>, u64), String>> {
        let max = self.config.max_batch_records.max(1);
        let generation = consumer.context().generation();
        let mut batch: Vec<InputRecord> = Vec::new();
        while batch.len() < max {
            match pending.pop_front() {
                Some((record, g)) if g == generation => batch.push(record),
                Some(_) => {}
                None => break,
            }
        }
        let mut generation = generation;
        let mut fatal: Option<String> = None;
        // Returns the error that ends the consumer, if this message is one.
        let mut receive = |batch: &mut Vec<InputRecord>,
                           message: Result<BorrowedMessage<'_>, KafkaError>|
         -> Option<String> {
            let now = consumer.context().generation();
            if now != generation {
                // Records read before the rebalance belong to an assignment that is gone; the
                // new assignment starts again from the committed offsets.
                batch.clear();
                generation = now;
            }
            match message {
                Ok(m) => batch.push(InputRecord::from_message(&m)),
                Err(e @ KafkaError::MessageConsumptionFatal(_)) => return Some(e.to_string()),
                Err(e) => tracing::warn!(error = %e, "consumer error"),
            }
            None
        };
        if batch.is_empty() {
            tokio::select! {
                message = consumer.recv() => fatal = receive(&mut batch, message),
                _ = self.shutdown.cancelled() => return None,
            }
        }
        while batch.len() < max && fatal.is_none() {
            match consumer.recv().now_or_never() {
                Some(message) => fatal = receive(&mut batch, message),
                None => break,
            }
        }
        let gather = if backlog { self.config.batch_linger } else { self.processor.gather_for() };
        let linger = tokio::time::Instant::now() + gather;
        while !gather.is_zero() && batch.len() < max && fatal.is_none() {
            match tokio::time::timeout_at(linger, consumer.recv()).await {
                Ok(message) => fatal = receive(&mut batch, message),
                Err(_) => break,
            }
        }
        Some(match fatal {
            Some(reason) => Err(reason),
            None => Ok((batch, generation)),
        })
    }

    /// Runs the processor. While it holds a pause, the partitions are paused and the consumer
    /// keeps being polled, so the instance stays in the group and sees rebalances.
    async fn process(
        &self,
        consumer: &StreamConsumer<StageContext>,
        batch: &[InputRecord],
        generation: u64,
        pending: &mut VecDeque<(InputRecord, u64)>,
    ) -> Result<Vec<OutputRecord>, BatchInterrupt> {
        let pause = PauseSignal::default();
        let mut paused = pause.subscribe();
        let mut rebalanced = consumer.context().rebalanced.subscribe();
        let work = self.processor.process(batch, &pause);
        tokio::pin!(work);
        let mut shutdown_asked = false;
        // Armed only once shutdown is asked for.
        let grace = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(grace);
        let result = loop {
            let is_paused = *paused.borrow();
            tokio::select! {
                biased;
                result = &mut work => break result,
                Ok(()) = paused.changed() => {
                    let now_paused = *paused.borrow_and_update();
                    self.set_paused(consumer, now_paused);
                }
                Ok(()) = rebalanced.changed() => {
                    if consumer.context().generation() != generation {
                        self.set_paused(consumer, false);
                        return Err(BatchInterrupt::Rebalance);
                    }
                }
                message = consumer.recv(), if is_paused => {
                    if consumer.context().generation() != generation {
                        self.set_paused(consumer, false);
                        return Err(BatchInterrupt::Rebalance);
                    }
                    if let Ok(m) = message {
                        pending.push_back((InputRecord::from_message(&m), generation));
                    }
                }
                _ = self.shutdown.cancelled(), if !shutdown_asked => {
                    shutdown_asked = true;
                    grace.as_mut().reset(tokio::time::Instant::now() + self.grace_period);
                }
                _ = &mut grace, if shutdown_asked => {
                    self.set_paused(consumer, false);
                    return Err(BatchInterrupt::Shutdown);
                }
            }
            // A batch waiting on an outside limit is not drained at shutdown: it may wait for hours.
            if shutdown_asked && *paused.borrow() {
                self.set_paused(consumer, false);
                return Err(BatchInterrupt::Shutdown);
            }
        };
        self.set_paused(consumer, false);
        result.map_err(|e| match e {
            ProcessError::Transient(reason) => BatchInterrupt::Retry(reason),
            ProcessError::Fatal(reason) => BatchInterrupt::Fatal(reason),
        })
    }

    fn set_paused(&self, consumer: &StreamConsumer<StageContext>, paused: bool) {
        if (self.metrics.paused.get() == 1) == paused {
            return;
        }
        let assignment = match consumer.assignment() {
            Ok(assignment) => assignment,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the assignment");
                return;
            }
        };
        let result = if paused { consumer.pause(&assignment) } else { consumer.resume(&assignment) };
        match result {
            Ok(()) => {
                self.metrics.paused.set(i64::from(paused));
                if paused {
                    tracing::warn!(partitions = %describe(&assignment), "consumption paused: waiting on an outside limit");
                } else {
                    tracing::info!(partitions = %describe(&assignment), "consumption resumed");
                }
            }
            Err(e) => tracing::warn!(error = %e, paused, "cannot pause or resume the partitions"),
        }
    }

    /// Writes `outputs` and the batch's offsets: in one transaction, or (at-least-once) one after
    /// the other.
    async fn commit(
        &self,
        producer: &FutureProducer,
        consumer: &StreamConsumer<StageContext>,
        batch: &[InputRecord],
        generation: u64,
        outputs: Vec<OutputRecord>,
    ) -> Result<(), BatchInterrupt> {
        // However long the batch took, it commits only for an assignment that still holds all
        // of it: otherwise another member may already be redoing some of its partitions.
        if consumer.context().generation() != generation || !holds_all(consumer, batch) {
            return Err(BatchInterrupt::Rebalance);
        }
        let offsets = next_offsets(batch).map_err(|e| BatchInterrupt::Fatal(e.to_string()))?;
        if !self.config.exactly_once {
            self.write(producer, &outputs).await.map_err(classify)?;
            consumer.commit(&offsets, rdkafka::consumer::CommitMode::Async).map_err(classify)?;
            self.metrics.records_consumed.inc_by(batch.len() as u64);
            return Ok(());
        }
        let group = consumer
            .group_metadata()
            .ok_or_else(|| BatchInterrupt::Retry("the consumer has no group metadata yet".into()))?;
        producer.begin_transaction().map_err(classify)?;
        // The acknowledgements are awaited before the offsets are sent. Sending the offsets and
        // committing while the records were still queued (commit_transaction flushes them) was
        // measured to add about 150 ms to every batch (docs/BENCHMARKS.md, issue #15).
        let written = self.write(producer, &outputs).await;
        let p = producer.clone();
        let committed = tokio::task::spawn_blocking(move || {
            written?;
            p.send_offsets_to_transaction(&offsets, &group, KAFKA_CALL_TIMEOUT)?;
            p.commit_transaction(KAFKA_CALL_TIMEOUT)
        })
        .await
        .expect("the commit does not panic");
        match committed {
            Ok(()) => {
                self.metrics.transactions.with_label_values(&["committed"]).inc();
                self.metrics.records_consumed.inc_by(batch.len() as u64);
                tracing::debug!(records = batch.len(), outputs = outputs.len(), "batch committed");
                Ok(())
            }
            Err(e) => {
                let interrupt = classify(e);
                if let BatchInterrupt::Retry(_) = interrupt {
                    let p = producer.clone();
                    let aborted =
                        tokio::task::spawn_blocking(move || p.abort_transaction(KAFKA_CALL_TIMEOUT))
                            .await
                            .expect("the abort does not panic");
                    self.metrics.transactions.with_label_values(&["aborted"]).inc();
                    if let Err(e) = aborted {
                        return Err(BatchInterrupt::Fatal(format!("cannot abort the transaction: {e}")));
                    }
                }
                Err(interrupt)
            }
        }
    }

    /// Writes `outputs` and waits until every one is acknowledged.
    async fn write(&self, producer: &FutureProducer, outputs: &[OutputRecord]) -> Result<(), KafkaError> {
        let mut deliveries = Vec::with_capacity(outputs.len());
        for output in outputs {
            let mut record = FutureRecord::to(output.topic).key(&output.key).payload(&output.value);
            if !output.headers.is_empty() {
                let headers = output.headers.iter().fold(OwnedHeaders::new(), |headers, (key, value)| {
                    headers.insert(Header { key, value: Some(value.as_bytes()) })
                });
                record = record.headers(headers);
            }
            deliveries.push(producer.send(record, KAFKA_CALL_TIMEOUT));
        }
        for delivery in futures::future::join_all(deliveries).await {
            delivery.map_err(|(e, _)| e)?;
        }
        Ok(())
    }
}

/// Whether the consumer's assignment holds every topic partition of the batch.
fn holds_all(consumer: &StreamConsumer<StageContext>, batch: &[InputRecord]) -> bool {
    let Ok(assignment) = consumer.assignment() else { return false };
    let elements = assignment.elements();
    let held: std::collections::BTreeSet<(&str, i32)> =
        elements.iter().map(|e| (e.topic(), e.partition())).collect();
    batch.iter().all(|r| held.contains(&(&*r.topic, r.partition)))
}

/// Fatal errors end the stage; everything else aborts the transaction and retries the batch.
fn classify(error: KafkaError) -> BatchInterrupt {
    match &error {
        KafkaError::Transaction(e) if e.is_fatal() => BatchInterrupt::Fatal(error.to_string()),
        _ => BatchInterrupt::Retry(error.to_string()),
    }
}

/// The offsets to commit for a batch: one past the last record of each topic partition.
fn next_offsets(batch: &[InputRecord]) -> Result<TopicPartitionList, KafkaError> {
    let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for record in batch {
        let entry = last.entry((&record.topic, record.partition)).or_insert(record.offset);
        *entry = (*entry).max(record.offset);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in last {
        offsets.add_partition_offset(topic, partition, Offset::Offset(offset + 1))?;
    }
    Ok(offsets)
}

/// Moves the consumer back to the first record of each partition in the batch or in the
/// records kept for later, so that a failed batch is read again.
fn rewind(
    consumer: &StreamConsumer<StageContext>,
    batch: &[InputRecord],
    pending: &VecDeque<(InputRecord, u64)>,
) {
    let mut first: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for record in batch.iter().chain(pending.iter().map(|(r, _)| r)) {
        let entry = first.entry((&record.topic, record.partition)).or_insert(record.offset);
        *entry = (*entry).min(record.offset);
    }
    let mut positions = TopicPartitionList::new();
    for ((topic, partition), offset) in first {
        let _ = positions.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    // A partition that was revoked meanwhile fails to seek; its new owner starts from the
    // committed offset anyway.
    if let Err(e) = consumer.seek_partitions(positions, Duration::from_secs(10)) {
        tracing::warn!(error = %e, "rewind failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, partition: i32, offset: i64) -> InputRecord {
        InputRecord { topic: Arc::from(topic), partition, offset, key: None, value: None }
    }

    #[test]
    fn offsets_to_commit_are_one_past_each_partitions_last_record() {
        let batch =
            [record("t", 0, 5), record("t", 1, 9), record("t", 0, 7), record("u", 0, 2), record("t", 0, 6)];
        let offsets = next_offsets(&batch).unwrap();
        let found: Vec<(String, i32, Offset)> =
            offsets.elements().iter().map(|e| (e.topic().to_owned(), e.partition(), e.offset())).collect();
        assert_eq!(
            found,
            vec![
                ("t".into(), 0, Offset::Offset(8)),
                ("t".into(), 1, Offset::Offset(10)),
                ("u".into(), 0, Offset::Offset(3))
            ]
        );
    }
}
