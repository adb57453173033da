//! What the stand-in is started with and cannot change while it runs: the mode, the token, the
//! properties that exist from the start; and the faults it starts with (those can change).

use std::str::FromStr;

use super::faults::Faults;
use super::hubspot::PropertySpec;

/// Which CRM the stand-in plays, fixed at start. HubSpot is the default (the binary's `--mode`,
/// [`Settings::default`]): the sink must be right against the CRM it will meet. The versioned
/// mode stays for tests of the sink's older guarantees; the bare `router`/`serve` still give it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// The original simplified CRM: a version guard per contact and idempotency keys.
    Versioned,
    /// HubSpot's contacts API as it really behaves: last writer wins, strict bodies, properties
    /// that must exist, email conflicts, daily limits.
    #[default]
    HubSpot,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "versioned" => Ok(Mode::Versioned),
            "hubspot" => Ok(Mode::HubSpot),
            other => Err(format!("mode must be hubspot or versioned, got {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub mode: Mode,
    pub faults: Faults,
    /// HubSpot mode: when set, every non-admin request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// HubSpot mode: custom contact properties that exist from the start (and after a reset),
    /// besides the built-in ones.
    pub precreated_properties: Vec<PropertySpec>,
}

impl Settings {
    pub fn versioned(faults: Faults) -> Self {
        Settings { mode: Mode::Versioned, faults, ..Settings::default() }
    }

    /// HubSpot mode with no token and only the built-in properties.
    pub fn hubspot(faults: Faults) -> Self {
        Settings { mode: Mode::HubSpot, faults, ..Settings::default() }
    }

    /// The same, with LeadFlow's own properties ([`PropertySpec::leadflow`]) already created, for
    /// tests that do not run the sink's setup.
    pub fn hubspot_with_leadflow_properties(faults: Faults) -> Self {
        Settings { precreated_properties: PropertySpec::leadflow(), ..Settings::hubspot(faults) }
    }
}
