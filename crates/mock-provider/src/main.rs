//! `infron-mock-provider [--bind 127.0.0.1:9090] [--expected-api-key KEY]`
//!
//! Environment: `MOCK_BIND` (bind address) and `MOCK_EXPECTED_API_KEY`;
//! command-line flags win. Runs until Ctrl-C.

use std::io::Write;

use infron_mock_provider::{MockConfig, MockProvider};

const DEFAULT_BIND: &str = "127.0.0.1:9090";

const USAGE: &str = "usage: infron-mock-provider [--bind ADDR] [--expected-api-key KEY]\n\
    \n  --bind ADDR              listen address (default 127.0.0.1:9090, env MOCK_BIND)\
    \n  --expected-api-key KEY   reject requests without this key (env MOCK_EXPECTED_API_KEY)\n";

struct Args {
    bind: String,
    expected_api_key: Option<String>,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut args = Args {
        bind: std::env::var("MOCK_BIND")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_BIND.to_string()),
        expected_api_key: std::env::var("MOCK_EXPECTED_API_KEY")
            .ok()
            .filter(|v| !v.is_empty()),
    };
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--bind" => args.bind = value("--bind")?,
            "--expected-api-key" => args.expected_api_key = Some(value("--expected-api-key")?),
            "-h" | "--help" => return Ok(Parsed::Help),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Parsed::Run(args))
}

fn main() -> anyhow::Result<()> {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            std::io::stderr().write_all(USAGE.as_bytes())?;
            return Ok(());
        }
        Err(e) => {
            std::io::stderr().write_all(format!("error: {e}\n{USAGE}").as_bytes())?;
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let config = MockConfig {
            expected_api_key: args.expected_api_key,
            ..MockConfig::default()
        };
        let mock = MockProvider::start_with(&args.bind, config).await?;
        tracing::info!("infron-mock-provider listening on {}", mock.base_url());
        tokio::signal::ctrl_c().await?;
        tracing::info!("infron-mock-provider shutting down");
        mock.shutdown();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(v: &[&str]) -> Result<Parsed, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        let Ok(Parsed::Run(a)) = parse(&["--bind", "0.0.0.0:1", "--expected-api-key=k"]) else {
            panic!("expected run");
        };
        assert_eq!(a.bind, "0.0.0.0:1");
        assert_eq!(a.expected_api_key.as_deref(), Some("k"));
        assert!(matches!(parse(&["--help"]), Ok(Parsed::Help)));
        assert!(parse(&["--bind"]).is_err());
        assert!(parse(&["--nope"]).is_err());
    }
}
