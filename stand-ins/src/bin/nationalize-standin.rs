//! The nationalize.io stand-in as a process; see `stand_ins::nationalize` for what it answers.

use std::process::ExitCode;

use stand_ins::nationalize::{self, cli};

fn main() -> ExitCode {
    stand_ins::process::main(
        "nationalize-standin",
        "nationalize stand-in",
        cli::USAGE,
        |args| cli::parse_args(args).map(|config| (config.listen, config.faults)),
        nationalize::serve,
    )
}
