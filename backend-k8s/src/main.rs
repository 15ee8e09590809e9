fn main() -> std::process::ExitCode {
    backend_core::main::<backend_k8s::K8sProvider>()
}
