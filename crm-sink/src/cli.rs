//! The crm-sink's command line: the sink itself, `crm-sink setup` or `crm-sink reconcile`.

use std::process::ExitCode;
use std::time::Duration;

use crate::reconcile::{self, ReconcileOptions};

const USAGE: &str = "usage: crm-sink               run the sink
       crm-sink setup         create (or check) the contact properties the sink writes, in
                            every configured CRM; safe to run again
       crm-sink reconcile [--wait-s N]
                            compare every lead the CRM should hold with the CRM's copy, ask
                            for re-delivery of those missing, older or edited there, then wait
                            up to N seconds (default 120; 0: do not wait) for them";

/// Runs the sink, or `reconcile`, as the arguments say; a bad command line exits 2.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => leadflow_core::runtime::service::run_main("crm-sink", crate::DEFAULTS, crate::run),
        ["setup"] => leadflow_core::runtime::service::run_main("crm-sink", crate::DEFAULTS, |config, _| {
            crate::setup::run(config)
        }),
        ["reconcile", options @ ..] => match reconcile_options(options) {
            Ok(options) => leadflow_core::runtime::service::run_main(
                "crm-sink",
                crate::DEFAULTS,
                move |config, context| reconcile::run_once(config, context, options),
            ),
            Err(message) => usage_error(&message),
        },
        ["--help" | "-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        [other, ..] => usage_error(&format!("unknown command {other:?}")),
    }
}

fn reconcile_options(args: &[&str]) -> Result<ReconcileOptions, String> {
    let mut options = ReconcileOptions { wait: Duration::from_secs(120) };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--wait-s" => {
                let value = args.next().ok_or("--wait-s needs a number of seconds")?;
                let seconds: u64 =
                    value.parse().map_err(|_| format!("--wait-s: {value:?} is not a number of seconds"))?;
                options.wait = Duration::from_secs(seconds);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(options)
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("crm-sink: {message}\n{USAGE}");
    ExitCode::from(2)
}
