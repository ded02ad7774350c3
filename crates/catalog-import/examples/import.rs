//! Development helper without the gateway binary: `cargo run -p infron-catalog-import --example
//! import -- LITELLM.json OVERRIDES.toml CATALOG.toml [OPENROUTER.json]`. The product command is
//! `infron catalog import` (scripts/regenerate-catalog.sh).
#![allow(clippy::print_stdout)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let [litellm, overrides, catalog, rest @ ..] = args.as_slice() else {
        return Err("usage: import LITELLM OVERRIDES CATALOG [OPENROUTER]".into());
    };
    let report = infron_catalog_import::run(&infron_catalog_import::Options {
        litellm: Some(litellm.clone()),
        openrouter: rest.first().cloned(),
        overrides: overrides.clone(),
        catalog: catalog.clone(),
        output: None,
        dry_run: false,
    })?;
    println!("{report}");
    Ok(())
}
