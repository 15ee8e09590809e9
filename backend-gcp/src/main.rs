fn main() -> std::process::ExitCode {
    backend_core::main::<backend_gcp::GcpProvider>()
}
