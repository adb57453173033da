fn main() -> std::process::ExitCode {
    leadflow_core::runtime::service::run_main("enricher", enricher::DEFAULTS, enricher::run)
}
