fn main() -> std::process::ExitCode {
    leadflow_core::runtime::service::run_main("ingest-gateway", ingest_gateway::DEFAULTS, ingest_gateway::run)
}
