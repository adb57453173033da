fn main() -> std::process::ExitCode {
    leadflow_core::service::run_main("crm-sink", crm_sink::DEFAULTS, crm_sink::run)
}
