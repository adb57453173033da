fn main() -> std::process::ExitCode {
    leadflow_core::service::run_main("enricher", enricher::DEFAULTS, enricher::run)
}
