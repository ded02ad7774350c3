//! What an import changed, compared with the catalog file it replaces: new and removed models,
//! new and removed endpoints, and price changes.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    models: Vec<FileModel>,
}

#[derive(Debug, Deserialize)]
struct FileModel {
    id: String,
    #[serde(default)]
    endpoints: Vec<FileEndpoint>,
}

#[derive(Debug, Deserialize)]
struct FileEndpoint {
    provider: String,
    upstream_model: String,
    #[serde(default)]
    pricing: BTreeMap<String, toml::Value>,
}

/// One endpoint's prices, keyed by field, as normalized decimal strings.
type Prices = BTreeMap<String, String>;
/// Model id → provider → (upstream model, prices).
type Index = BTreeMap<String, BTreeMap<String, (String, Prices)>>;

fn index(text: &str) -> Result<Index, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for m in file.models {
        let mut endpoints = BTreeMap::new();
        for e in m.endpoints {
            let prices = e
                .pricing
                .into_iter()
                .map(|(k, v)| {
                    let text = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    let norm = text
                        .parse::<rust_decimal::Decimal>()
                        .map(|d| d.normalize().to_string())
                        .unwrap_or(text);
                    (k, norm)
                })
                .collect();
            endpoints.insert(e.provider, (e.upstream_model, prices));
        }
        out.insert(m.id, endpoints);
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChange {
    pub model: String,
    pub provider: String,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub new_models: Vec<String>,
    pub removed_models: Vec<String>,
    /// `model: provider (upstream)`.
    pub new_endpoints: Vec<String>,
    pub removed_endpoints: Vec<String>,
    pub price_changes: Vec<PriceChange>,
    /// Price-list entries of shipped providers that were not imported, with the reason.
    pub rejected: Vec<(String, String)>,
    /// OpenRouter ids adopted: (imported id, OpenRouter id).
    pub renamed: Vec<(String, String)>,
    pub totals: Totals,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub providers: usize,
    pub models: usize,
    pub endpoints: usize,
    pub multi_endpoint_models: usize,
    pub providers_with_endpoints: usize,
}

/// Compares the catalog text before (None for a first import) and after.
pub fn diff(old: Option<&str>, new: &str) -> Result<Report, String> {
    let before = match old {
        Some(text) => index(text).map_err(|e| format!("previous catalog: {e}"))?,
        None => BTreeMap::new(),
    };
    let after = index(new).map_err(|e| format!("generated catalog: {e}"))?;
    let mut r = Report::default();
    for (id, endpoints) in &after {
        let Some(old_endpoints) = before.get(id) else {
            r.new_models.push(id.clone());
            continue;
        };
        for (provider, (upstream, prices)) in endpoints {
            match old_endpoints.get(provider) {
                None => r
                    .new_endpoints
                    .push(format!("{id}: {provider} ({upstream})")),
                Some((old_upstream, old_prices)) => {
                    if old_upstream != upstream {
                        r.removed_endpoints
                            .push(format!("{id}: {provider} ({old_upstream})"));
                        r.new_endpoints
                            .push(format!("{id}: {provider} ({upstream})"));
                    }
                    let fields: std::collections::BTreeSet<&String> =
                        prices.keys().chain(old_prices.keys()).collect();
                    for f in fields {
                        let (o, n) = (old_prices.get(f), prices.get(f));
                        if o != n {
                            r.price_changes.push(PriceChange {
                                model: id.clone(),
                                provider: provider.clone(),
                                field: f.clone(),
                                old: o.cloned(),
                                new: n.cloned(),
                            });
                        }
                    }
                }
            }
        }
        for (provider, (upstream, _)) in old_endpoints {
            if !endpoints.contains_key(provider) {
                r.removed_endpoints
                    .push(format!("{id}: {provider} ({upstream})"));
            }
        }
    }
    for (id, endpoints) in &before {
        if !after.contains_key(id) {
            r.removed_models.push(id.clone());
            for (provider, (upstream, _)) in endpoints {
                r.removed_endpoints
                    .push(format!("{id}: {provider} ({upstream})"));
            }
        }
    }
    Ok(r)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        writeln!(
            f,
            "catalog: {} providers ({} with endpoints), {} models, {} endpoints, {} models with two or more endpoints",
            t.providers, t.providers_with_endpoints, t.models, t.endpoints, t.multi_endpoint_models
        )?;
        let section = |f: &mut fmt::Formatter<'_>, title: &str, items: &[String]| {
            writeln!(f, "{title}: {}", items.len())?;
            for i in items {
                writeln!(f, "  {i}")?;
            }
            Ok(())
        };
        section(f, "new models", &self.new_models)?;
        section(f, "removed models", &self.removed_models)?;
        section(f, "new endpoints", &self.new_endpoints)?;
        section(f, "removed endpoints", &self.removed_endpoints)?;
        writeln!(f, "price changes: {}", self.price_changes.len())?;
        for c in &self.price_changes {
            writeln!(
                f,
                "  {} {} {}: {} -> {}",
                c.model,
                c.provider,
                c.field,
                c.old.as_deref().unwrap_or("-"),
                c.new.as_deref().unwrap_or("-")
            )?;
        }
        writeln!(f, "renamed to OpenRouter ids: {}", self.renamed.len())?;
        for (from, to) in &self.renamed {
            writeln!(f, "  {from} -> {to}")?;
        }
        writeln!(
            f,
            "price-list entries not imported: {}",
            self.rejected.len()
        )?;
        for (key, reason) in &self.rejected {
            writeln!(f, "  {key}: {reason}")?;
        }
        Ok(())
    }
}
