//! The `webhook-receiver` command line, parsed by hand like the other stand-ins'.

use std::net::SocketAddr;

use super::Settings;
use super::signature::ReceiverSecret;
use crate::process::parse_value as parse;

pub const USAGE: &str = "usage: webhook-receiver [--listen ADDR] [--secret whsec_...] [--tolerance-s N] \
                         [--latency-ms N] [--fail-first N] [--fail-status N] [--status N]\n\
                         defaults: --listen 127.0.0.1:8093, no secret (nothing verifies), --tolerance-s 300, \
                         no latency, no failures, --fail-status 500, --status 200";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub settings: Settings,
}

/// Parses the arguments after the program name; `--flag value` and `--flag=value` both work.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut config =
        Config { listen: SocketAddr::from(([127, 0, 0, 1], 8093)), settings: Settings::default() };
    for (flag, value) in crate::process::flags(args)? {
        let settings = &mut config.settings;
        let faults = &mut settings.faults;
        match flag.as_str() {
            "--listen" => config.listen = parse(&flag, &value)?,
            "--secret" => {
                settings.secrets.secret =
                    Some(ReceiverSecret::parse(&value).map_err(|e| format!("--secret: {e}"))?)
            }
            "--tolerance-s" => settings.tolerance_s = parse(&flag, &value)?,
            "--latency-ms" => faults.latency_ms = parse(&flag, &value)?,
            "--fail-first" => faults.fail_first = parse(&flag, &value)?,
            "--fail-status" => faults.fail_status = parse(&flag, &value)?,
            "--status" => faults.status = parse(&flag, &value)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    config.settings.faults.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::super::faults::Faults;
    use super::*;

    fn args(line: &str) -> Result<Config, String> {
        parse_args(line.split_whitespace().map(String::from))
    }

    #[test]
    fn no_flags_give_the_defaults() {
        let config = args("").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8093");
        assert_eq!(config.settings, Settings::default());
    }

    #[test]
    fn every_flag_is_read_in_either_spelling() {
        let config = args(
            "--listen 127.0.0.1:0 --secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw --tolerance-s 60 \
             --latency-ms=20 --fail-first 3 --fail-status=503 --status 204",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 0);
        let expected =
            Faults { latency_ms: 20, fail_first: 3, fail_status: 503, status: 204, ..Faults::default() };
        assert_eq!(config.settings.faults, expected);
        assert_eq!(config.settings.tolerance_s, 60);
        let secret = ReceiverSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(config.settings.secrets.secret, Some(secret));
    }

    #[test]
    fn bad_flags_are_errors() {
        for line in [
            "--fail-first",
            "--fail-first many",
            "--port 1",
            "--status 700",
            "--secret whsec_***",
            "--listen x",
        ] {
            assert!(args(line).is_err(), "{line} was accepted");
        }
    }
}
