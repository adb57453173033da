//! Local stand-ins for the external APIs LeadFlow calls, so that tests and the demo run without
//! the network: each one answers like the real service, deterministically, and can be told to be
//! slow, flaky or out of quota.
//!
//! - [`nationalize`]: nationalize.io (name → likely countries), served by the
//!   `nationalize-standin` binary on 127.0.0.1:8091 by default.
//! - [`crm`]: the CRM (HubSpot's contacts batch upsert), served by the `crm-standin` binary on
//!   127.0.0.1:8092 by default.
//! - [`webhooks`]: a receiver of LeadFlow's outbound webhooks (and Slack-style messages) that
//!   checks their signatures, served by the `webhook-receiver` binary on 127.0.0.1:8093 by default.

pub mod crm;
pub mod nationalize;
pub mod process;
pub mod webhooks;
