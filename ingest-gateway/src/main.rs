// Records are built and freed per event, many per request: the allocator is on the hot path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    leadflow_core::runtime::service::run_main("ingest-gateway", ingest_gateway::DEFAULTS, ingest_gateway::run)
}
