//! `infron catalog import`: builds `config/catalog.toml` from public price lists and a file of
//! manual overrides, and reports what changed.
//!
//! Sources: LiteLLM's model price map (the JSON shipped in the `litellm` package: per-token
//! prices, limits, capability flags for thousands of provider models) and, optionally, a saved
//! response of OpenRouter's `GET /api/v1/models` (ids, names, descriptions). The overrides file
//! defines the providers the catalog ships and corrects or adds anything; it always wins. The
//! result is validated with the gateway's own catalog loader before it is returned.

pub mod assemble;
pub mod decimal;
pub mod litellm;
pub mod naming;
pub mod openrouter;
pub mod overrides;
pub mod render;
pub mod report;

use std::collections::HashSet;

use thiserror::Error;

pub use overrides::Overrides;
pub use report::Report;

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{file}: {reason}")]
    Source { file: String, reason: String },
    #[error("overrides {file}: {reason}")]
    Overrides { file: String, reason: String },
    #[error("the generated catalog is invalid: {0}")]
    Invalid(#[from] infron_router::CatalogError),
}

/// A source file: a label for messages and the file header, and its text.
pub struct Source<'a> {
    pub label: &'a str,
    pub text: &'a str,
}

pub struct Inputs<'a> {
    pub litellm: Option<Source<'a>>,
    pub openrouter: Option<Source<'a>>,
    pub overrides: Source<'a>,
    /// The catalog being replaced, for the report.
    pub previous: Option<&'a str>,
}

pub struct Outcome {
    pub catalog: String,
    pub report: Report,
}

pub fn import(inputs: &Inputs<'_>) -> Result<Outcome, ImportError> {
    let overrides =
        Overrides::parse(inputs.overrides.text).map_err(|reason| ImportError::Overrides {
            file: inputs.overrides.label.to_string(),
            reason,
        })?;
    let mut sources = Vec::new();
    let (offers, rejected) = match &inputs.litellm {
        Some(src) => {
            sources.push(format!("LiteLLM price map: {}", src.label));
            litellm::offers(src.text, &overrides).map_err(|reason| ImportError::Source {
                file: src.label.to_string(),
                reason,
            })?
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut models = assemble::models(&offers, &overrides);
    let mut renamed = Vec::new();
    if let Some(src) = &inputs.openrouter {
        sources.push(format!("OpenRouter model list: {}", src.label));
        let list = openrouter::parse(src.text).map_err(|reason| ImportError::Source {
            file: src.label.to_string(),
            reason,
        })?;
        renamed = openrouter::apply(&mut models, &list);
    }
    sources.push(format!("manual overrides: {}", inputs.overrides.label));
    assemble::apply_patches(&mut models, &overrides.models).map_err(|reason| {
        ImportError::Overrides {
            file: inputs.overrides.label.to_string(),
            reason,
        }
    })?;
    models.sort_by(|a, b| a.id.cmp(&b.id));
    dedupe_aliases(&mut models);
    let catalog = render::catalog(
        &overrides.providers,
        &models,
        &render::Provenance { sources },
    );
    // The gateway's own loader has the last word on validity. `${VAR}` in base URLs is
    // expanded to a placeholder: the environment of the machine importing is not the gateway's.
    infron_router::Catalog::parse(&catalog, "generated catalog", &|_| {
        Some("http://placeholder.invalid".to_string())
    })?;
    let mut report =
        report::diff(inputs.previous, &catalog).map_err(|reason| ImportError::Source {
            file: "catalog".into(),
            reason,
        })?;
    report.rejected = rejected.into_iter().map(|r| (r.key, r.reason)).collect();
    report.renamed = renamed;
    let used: HashSet<&str> = models
        .iter()
        .flat_map(|m| m.endpoints.iter().map(|e| e.provider.as_str()))
        .collect();
    report.totals = report::Totals {
        providers: overrides.providers.len(),
        providers_with_endpoints: used.len(),
        models: models.len(),
        endpoints: models.iter().map(|m| m.endpoints.len()).sum(),
        multi_endpoint_models: models.iter().filter(|m| m.endpoints.len() > 1).count(),
    };
    Ok(Outcome { catalog, report })
}

/// Ids are never aliases, and an alias belongs to one model (the first, in id order).
fn dedupe_aliases(models: &mut [assemble::CatalogModel]) {
    let mut taken: HashSet<String> = models.iter().map(|m| m.id.clone()).collect();
    for m in models.iter_mut() {
        m.aliases.retain(|a| taken.insert(a.clone()));
    }
}

/// What `infron catalog import` reads and writes.
#[derive(Debug, Clone)]
pub struct Options {
    pub litellm: Option<std::path::PathBuf>,
    pub openrouter: Option<std::path::PathBuf>,
    pub overrides: std::path::PathBuf,
    /// The catalog replaced (read for the report, unless missing) and written.
    pub catalog: std::path::PathBuf,
    /// Write here instead of `catalog`.
    pub output: Option<std::path::PathBuf>,
    /// Report only; write nothing.
    pub dry_run: bool,
}

/// Reads the sources, imports, writes the catalog (unless `dry_run`) and returns the report.
pub fn run(options: &Options) -> Result<Report, ImportError> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| ImportError::Source {
            file: path.display().to_string(),
            reason: e.to_string(),
        })
    };
    let litellm = options.litellm.as_deref().map(read).transpose()?;
    let openrouter = options.openrouter.as_deref().map(read).transpose()?;
    let overrides = read(&options.overrides)?;
    let previous = std::fs::read_to_string(&options.catalog).ok();
    let label = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .and_then(std::path::Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (litellm_label, openrouter_label) = (label(&options.litellm), label(&options.openrouter));
    let overrides_label = options.overrides.display().to_string();
    let outcome = import(&Inputs {
        litellm: litellm.as_deref().map(|text| Source {
            label: &litellm_label,
            text,
        }),
        openrouter: openrouter.as_deref().map(|text| Source {
            label: &openrouter_label,
            text,
        }),
        overrides: Source {
            label: &overrides_label,
            text: &overrides,
        },
        previous: previous.as_deref(),
    })?;
    if !options.dry_run {
        let out = options.output.as_ref().unwrap_or(&options.catalog);
        std::fs::write(out, &outcome.catalog).map_err(|e| ImportError::Source {
            file: out.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(outcome.report)
}
