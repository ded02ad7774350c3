use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    infron_api::cli::run(infron_api::cli::Cli::parse()).await
}
