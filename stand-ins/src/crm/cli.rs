//! The `crm-standin` command line, parsed by hand: six flags do not warrant a parser crate.

use std::net::SocketAddr;

use super::faults::Faults;
use crate::process::parse_value as parse;

pub const USAGE: &str = "usage: crm-standin [--listen ADDR] [--latency-ms N] [--error-rate F] \
                         [--drop-after-write-rate F] [--burst-limit N] [--burst-window-ms N]\n\
                         defaults: --listen 127.0.0.1:8092, no latency, no errors, no drops, no burst limit, \
                         --burst-window-ms 10000";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub faults: Faults,
}

/// Parses the arguments after the program name; `--flag value` and `--flag=value` both work.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut config = Config { listen: SocketAddr::from(([127, 0, 0, 1], 8092)), faults: Faults::default() };
    for (flag, value) in crate::process::flags(args)? {
        let faults = &mut config.faults;
        match flag.as_str() {
            "--listen" => config.listen = parse(&flag, &value)?,
            "--latency-ms" => faults.latency_ms = parse(&flag, &value)?,
            "--error-rate" => faults.error_rate = parse(&flag, &value)?,
            "--drop-after-write-rate" => faults.drop_after_write_rate = parse(&flag, &value)?,
            "--burst-limit" => faults.burst_limit = Some(parse(&flag, &value)?),
            "--burst-window-ms" => faults.burst_window_ms = parse(&flag, &value)?,
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
        assert_eq!(config.listen.to_string(), "127.0.0.1:8092");
        assert_eq!(config.faults, Faults::default());
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
        };
        assert_eq!(config.faults, expected);
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
        ] {
            assert!(args(line).is_err(), "{line} was accepted");
        }
    }
}
