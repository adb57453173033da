fn main() -> std::process::ExitCode {
    leadflow_core::service::run_main("scorer", scorer::DEFAULTS, scorer::run)
}
