//! Where dashboard users live: MongoDB's `users`, `{_id: email lowercased, passwordHash: argon2id
//! PHC string, projects: [id], createdAt}`. [`UserStore`] is the interface; [`MongoUserStore`]
//! the one every replica shares, [`MemoryUserStore`] the same behaviour in memory for handler
//! tests, which run without a network.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use mongodb::bson::{self, doc};
use mongodb::{Client, Collection};
use serde::{Deserialize, Serialize};

use leadflow_core::store::mongo::is_duplicate_key;

pub const USERS: &str = "users";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDoc {
    /// The email, lowercased.
    #[serde(rename = "_id")]
    pub email: String,
    pub password_hash: String,
    #[serde(default)]
    pub projects: Vec<String>,
    pub created_at: bson::DateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    /// MongoDB did not answer, or answered with what this gateway cannot read: a 503.
    #[error("the user store is unavailable: {0}")]
    Unavailable(String),
    /// A user with that email exists already.
    #[error("a user with that email exists")]
    Exists,
}

impl From<mongodb::error::Error> for UserStoreError {
    fn from(error: mongodb::error::Error) -> Self {
        if is_duplicate_key(&error) {
            UserStoreError::Exists
        } else {
            UserStoreError::Unavailable(error.to_string())
        }
    }
}

type Answer<'a, T> = BoxFuture<'a, Result<T, UserStoreError>>;

pub trait UserStore: Send + Sync + 'static {
    fn user(&self, email: &str) -> Answer<'_, Option<UserDoc>>;
    /// [`UserStoreError::Exists`] when the email is taken.
    fn insert(&self, user: UserDoc) -> Answer<'_, ()>;
}

#[derive(Clone)]
pub struct MongoUserStore {
    users: Collection<UserDoc>,
}

impl MongoUserStore {
    /// Connects to nothing; each call does.
    pub fn new(client: Client, database: &str) -> Self {
        MongoUserStore { users: client.database(database).collection(USERS) }
    }
}

impl UserStore for MongoUserStore {
    fn user(&self, email: &str) -> Answer<'_, Option<UserDoc>> {
        let email = email.to_owned();
        Box::pin(async move { Ok(self.users.find_one(doc! { "_id": email }).await?) })
    }

    fn insert(&self, user: UserDoc) -> Answer<'_, ()> {
        Box::pin(async move {
            // `_id` is unique: of two concurrent registrations of one email, one gets Exists.
            self.users.insert_one(user).await?;
            Ok(())
        })
    }
}

/// The same contract in memory.
#[derive(Default)]
pub struct MemoryUserStore {
    users: Mutex<HashMap<String, UserDoc>>,
}

impl MemoryUserStore {
    /// Gives a stored user other projects, as an admin would in MongoDB.
    pub fn set_projects(&self, email: &str, projects: Vec<String>) {
        if let Some(user) = self.users.lock().expect("the store's lock").get_mut(email) {
            user.projects = projects;
        }
    }
}

impl UserStore for MemoryUserStore {
    fn user(&self, email: &str) -> Answer<'_, Option<UserDoc>> {
        let found = self.users.lock().expect("the store's lock").get(email).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn insert(&self, user: UserDoc) -> Answer<'_, ()> {
        let mut users = self.users.lock().expect("the store's lock");
        let answer = if users.contains_key(&user.email) {
            Err(UserStoreError::Exists)
        } else {
            users.insert(user.email.clone(), user);
            Ok(())
        };
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: &str) -> UserDoc {
        UserDoc {
            email: email.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            projects: vec!["acme".into()],
            created_at: bson::DateTime::from_millis(1_700_000_000_000),
        }
    }

    #[test]
    fn the_document_has_the_shared_designs_field_names() {
        let document = bson::to_document(&user("ada@example.com")).unwrap();
        assert_eq!(
            document,
            doc! {
                "_id": "ada@example.com",
                "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                "projects": ["acme"],
                "createdAt": bson::DateTime::from_millis(1_700_000_000_000),
            }
        );
    }

    #[tokio::test]
    async fn the_memory_store_refuses_a_second_user_with_the_same_email() {
        let store = MemoryUserStore::default();
        store.insert(user("ada@example.com")).await.unwrap();
        assert!(matches!(store.insert(user("ada@example.com")).await, Err(UserStoreError::Exists)));
        store.set_projects("ada@example.com", vec!["beta".into()]);
        assert_eq!(store.user("ada@example.com").await.unwrap().unwrap().projects, vec!["beta".to_owned()]);
        assert_eq!(store.user("bob@example.com").await.unwrap(), None);
    }
}
