//! The CRM stand-in as a process; see `stand_ins::crm` for what it answers.

use std::process::ExitCode;

use stand_ins::crm::{self, cli};

fn main() -> ExitCode {
    stand_ins::process::main(
        "crm-standin",
        "crm stand-in",
        cli::USAGE,
        |args| cli::parse_args(args).map(|config| (config.listen, config.settings)),
        crm::serve_with,
    )
}
