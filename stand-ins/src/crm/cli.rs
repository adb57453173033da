//! The `crm-standin` command line, parsed by hand: a dozen flags do not warrant a parser crate.

use std::net::SocketAddr;

use super::hubspot::PropertySpec;
use super::settings::{Mode, Settings};
use crate::process::parse_value as parse;

pub const USAGE: &str = "usage: crm-standin [--mode hubspot|versioned] [--listen ADDR] [--latency-ms N] \
                         [--error-rate F] [--drop-after-write-rate F] [--burst-limit N] [--burst-window-ms N]\n\
                         \x20      hubspot mode only: [--token T] [--precreate-properties leadflow|NAME[:unique],...] \
                         [--daily-limit N] [--late-apply-rate F] [--late-apply-delay-ms N] \
                         [--missing-scopes true|false] [--conflict-answer multiStatus|wholeBatch]\n\
                         defaults: --mode hubspot, --listen 127.0.0.1:8092, no latency, no errors, no drops, \
                         no burst limit, --burst-window-ms 10000, no token check, only built-in properties, \
                         no daily limit, no late applies, --late-apply-delay-ms 1000, --conflict-answer multiStatus";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub settings: Settings,
}

/// Parses the arguments after the program name; `--flag value` and `--flag=value` both work.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut config =
        Config { listen: SocketAddr::from(([127, 0, 0, 1], 8092)), settings: Settings::default() };
    let mut hubspot_only = None;
    for (flag, value) in crate::process::flags(args)? {
        let settings = &mut config.settings;
        let faults = &mut settings.faults;
        match flag.as_str() {
            "--mode" => settings.mode = value.parse()?,
            "--listen" => config.listen = parse(&flag, &value)?,
            "--latency-ms" => faults.latency_ms = parse(&flag, &value)?,
            "--error-rate" => faults.error_rate = parse(&flag, &value)?,
            "--drop-after-write-rate" => faults.drop_after_write_rate = parse(&flag, &value)?,
            "--burst-limit" => faults.burst_limit = Some(parse(&flag, &value)?),
            "--burst-window-ms" => faults.burst_window_ms = parse(&flag, &value)?,
            "--token" => settings.token = Some(value),
            "--precreate-properties" => settings.precreated_properties = PropertySpec::parse_list(&value)?,
            "--daily-limit" => faults.daily_limit = Some(parse(&flag, &value)?),
            "--late-apply-rate" => faults.late_apply_rate = parse(&flag, &value)?,
            "--late-apply-delay-ms" => faults.late_apply_delay_ms = parse(&flag, &value)?,
            "--missing-scopes" => faults.missing_scopes = parse(&flag, &value)?,
            "--conflict-answer" => {
                faults.conflict_answer = serde_json::from_value(value.clone().into()).map_err(|_| {
                    format!("--conflict-answer must be multiStatus or wholeBatch, got {value:?}")
                })?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
        if ["--token", "--precreate-properties"].contains(&flag.as_str()) {
            hubspot_only = Some(flag);
        }
    }
    let settings = &config.settings;
    if let (Mode::Versioned, Some(flag)) = (settings.mode, hubspot_only) {
        return Err(format!("{flag} applies only in hubspot mode"));
    }
    settings.faults.validate_for(settings.mode)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::super::faults::{ConflictAnswer, Faults};
    use super::*;

    fn args(line: &str) -> Result<Config, String> {
        parse_args(line.split_whitespace().map(String::from))
    }

    #[test]
    fn no_flags_give_the_defaults() {
        let config = args("").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8092");
        assert_eq!(config.settings, Settings::hubspot(Faults::default()));
        assert_eq!(config.settings, Settings::default());
    }

    #[test]
    fn every_flag_is_read_in_either_spelling() {
        let config = args(
            "--listen 127.0.0.1:0 --latency-ms=20 --error-rate 0.25 --drop-after-write-rate=0.5 \
             --burst-limit 5 --burst-window-ms=1000",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 0);
        let expected = Faults {
            latency_ms: 20,
            error_rate: 0.25,
            drop_after_write_rate: 0.5,
            burst_limit: Some(5),
            burst_window_ms: 1000,
            ..Faults::default()
        };
        assert_eq!(config.settings.faults, expected);
    }

    #[test]
    fn the_hubspot_flags_are_read_in_hubspot_mode() {
        let config = args(
            "--token=t --precreate-properties leadflow_id:unique,leadflow_version \
             --daily-limit 9 --late-apply-rate 0.5 --late-apply-delay-ms 600 --missing-scopes true \
             --conflict-answer wholeBatch",
        )
        .unwrap();
        let settings = config.settings;
        assert_eq!((settings.mode, settings.token.as_deref()), (Mode::HubSpot, Some("t")));
        assert_eq!(settings.precreated_properties.len(), 2);
        let f = settings.faults;
        assert_eq!((f.daily_limit, f.late_apply_rate, f.late_apply_delay_ms), (Some(9), 0.5, 600));
        assert!(f.missing_scopes);
        assert_eq!(f.conflict_answer, ConflictAnswer::WholeBatch);
    }

    #[test]
    fn bad_flags_are_errors() {
        for line in [
            "--burst-limit",
            "--burst-limit many",
            "--port 1",
            "--error-rate 2",
            "--drop-after-write-rate -0.1",
            "--burst-window-ms 0",
            "--listen nowhere",
            "--mode salesforce",
            "--mode versioned --token t",
            "--mode versioned --daily-limit 5",
            "--mode versioned --precreate-properties leadflow",
            "--mode hubspot --precreate-properties Bad",
            "--mode hubspot --conflict-answer sometimes",
            "--mode hubspot --late-apply-rate 2",
        ] {
            assert!(args(line).is_err(), "{line} was accepted");
        }
    }
}
