//! The webhook receiver stand-in as a process; see `stand_ins::webhooks` for what it does.

use std::process::ExitCode;

use stand_ins::webhooks::{self, cli};

fn main() -> ExitCode {
    stand_ins::process::main(
        "webhook-receiver",
        "webhook receiver",
        cli::USAGE,
        |args| cli::parse_args(args).map(|config| (config.listen, config.settings)),
        webhooks::serve,
    )
}
