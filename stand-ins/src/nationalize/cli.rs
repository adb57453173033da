//! The `nationalize-standin` command line, parsed by hand: six flags do not warrant a parser crate.

use std::net::SocketAddr;

use super::faults::Faults;
use crate::process::parse_value as parse;

pub const USAGE: &str = "usage: nationalize-standin [--listen ADDR] [--latency-ms N] [--error-rate F] \
                         [--quota N] [--window-s N] [--api-key K]\n\
                         defaults: --listen 127.0.0.1:8091, no latency, no errors, no quota, --window-s 86400";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub faults: Faults,
}

/// Parses the arguments after the program name; `--flag value` and `--flag=value` both work.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut config = Config { listen: SocketAddr::from(([127, 0, 0, 1], 8091)), faults: Faults::default() };
    for (flag, value) in crate::process::flags(args)? {
        let faults = &mut config.faults;
        match flag.as_str() {
            "--listen" => config.listen = parse(&flag, &value)?,
            "--latency-ms" => faults.latency_ms = parse(&flag, &value)?,
            "--error-rate" => faults.error_rate = parse(&flag, &value)?,
            "--quota" => faults.quota = Some(parse(&flag, &value)?),
            "--window-s" => faults.window_s = parse(&flag, &value)?,
            "--api-key" => faults.api_key = Some(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    config.faults.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Config, String> {
        parse_args(line.split_whitespace().map(String::from))
    }

    #[test]
    fn no_flags_give_the_defaults() {
        let config = args("").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8091");
        assert_eq!(config.faults, Faults::default());
    }

    #[test]
    fn every_flag_is_read_in_either_spelling() {
        let config = args(
            "--listen 127.0.0.1:0 --latency-ms=20 --error-rate 0.25 --quota=5 --window-s 60 --api-key secret",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 0);
        let expected = Faults {
            latency_ms: 20,
            error_rate: 0.25,
            quota: Some(5),
            window_s: 60,
            api_key: Some("secret".into()),
        };
        assert_eq!(config.faults, expected);
    }

    #[test]
    fn bad_flags_are_errors() {
        for line in
            ["--quota", "--quota many", "--port 1", "--error-rate 2", "--window-s 0", "--listen nowhere"]
        {
            assert!(args(line).is_err(), "{line} was accepted");
        }
    }
}
