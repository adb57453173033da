fn main() -> std::process::ExitCode {
    leadflow_core::runtime::service::run_main("automator", automator::DEFAULTS, automator::run)
}
