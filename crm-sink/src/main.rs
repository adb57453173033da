fn main() -> std::process::ExitCode {
    crm_sink::cli::main()
}
