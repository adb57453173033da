//! The MongoDB client every service builds the same way.

use std::time::Duration;

use crate::config::MongoConfig;

/// A client that gives up on an unreachable server within seconds, not the driver's default
/// 30 s, so that an outage shows up as a prompt error (and, where the caller can, a retry).
pub async fn client(config: &MongoConfig, app_name: &str) -> mongodb::error::Result<mongodb::Client> {
    let mut options = mongodb::options::ClientOptions::parse(&config.uri).await?;
    options.server_selection_timeout = Some(Duration::from_secs(3));
    options.connect_timeout = Some(Duration::from_secs(3));
    options.app_name = Some(app_name.to_owned());
    mongodb::Client::with_options(options)
}
