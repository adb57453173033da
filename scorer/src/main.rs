fn main() -> std::process::ExitCode {
    leadflow_core::runtime::service::run_main("scorer", scorer::DEFAULTS, scorer::run)
}
