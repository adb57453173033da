//! Against the real MongoDB-wire server of the local stack: the operations the pipeline relies
//! on (unique indexes with error 11000, upserts, multi-document transactions).

use leadflow_testkit::{Stack, unique};
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, IndexModel};

async fn collection() -> (Client, mongodb::Collection<Document>) {
    let stack = Stack::get();
    let client = Client::with_uri_str(&stack.mongodb_uri).await.unwrap();
    let collection = client.database("leadflow_test").collection(&unique("wire"));
    (client, collection)
}

#[tokio::test]
async fn a_unique_index_rejects_a_duplicate_with_code_11000() {
    let (_client, coll) = collection().await;
    let index = IndexModel::builder()
        .keys(doc! {"leadId": 1, "eventId": 1})
        .options(IndexOptions::builder().unique(true).build())
        .build();
    coll.create_index(index).await.unwrap();
    coll.insert_one(doc! {"leadId": "l1", "eventId": "e1"}).await.unwrap();
    coll.insert_one(doc! {"leadId": "l1", "eventId": "e2"}).await.unwrap();
    let err = coll.insert_one(doc! {"leadId": "l1", "eventId": "e1"}).await.unwrap_err();
    assert!(leadflow_core::store::mongo::is_duplicate_key(&err), "{err:?}");
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 2);
}

#[tokio::test]
async fn upserts_create_then_update_one_document() {
    let (_client, coll) = collection().await;
    for score in [5, 25] {
        coll.update_one(doc! {"_id": "lead-1"}, doc! {"$set": {"score": score}}).upsert(true).await.unwrap();
    }
    let docs: Vec<Document> = {
        let mut cursor = coll.find(doc! {}).await.unwrap();
        let mut out = Vec::new();
        while cursor.advance().await.unwrap() {
            out.push(cursor.deserialize_current().unwrap());
        }
        out
    };
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].get_i32("score").unwrap(), 25);
}

#[tokio::test]
async fn a_transaction_commits_together_and_an_aborted_one_leaves_nothing() {
    let (client, coll) = collection().await;
    coll.insert_one(doc! {"_id": "seed"}).await.unwrap(); // the collection exists before the transaction

    let mut session = client.start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    coll.insert_one(doc! {"_id": "a"}).session(&mut session).await.unwrap();
    coll.insert_one(doc! {"_id": "b"}).session(&mut session).await.unwrap();
    session.commit_transaction().await.unwrap();

    session.start_transaction().await.unwrap();
    coll.insert_one(doc! {"_id": "c"}).session(&mut session).await.unwrap();
    session.abort_transaction().await.unwrap();

    assert_eq!(coll.count_documents(doc! {"_id": {"$in": ["a", "b"]}}).await.unwrap(), 2);
    assert_eq!(
        coll.count_documents(doc! {"_id": "c"}).await.unwrap(),
        0,
        "the aborted insert must not persist"
    );
}
