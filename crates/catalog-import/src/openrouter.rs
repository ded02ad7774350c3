//! OpenRouter's model list (`GET https://openrouter.ai/api/v1/models`, saved to a file), for
//! operators who want OpenRouter's ids, names and descriptions. A listed model that matches an
//! imported one (same author, same slug once both are normalized) gives it its id, name and
//! description; the imported id stays as an alias. Prices are not taken from it: the catalog's
//! prices are the providers' own.

use serde::Deserialize;

use crate::assemble::CatalogModel;
use crate::naming;

#[derive(Debug, Clone, Deserialize)]
pub struct ModelList {
    pub data: Vec<ListedModel>,
}

/// The fields of one model the import uses (the response has more).
#[derive(Debug, Clone, Deserialize)]
pub struct ListedModel {
    pub id: String,
    #[serde(default)]
    pub canonical_slug: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub context_length: Option<u64>,
}

pub fn parse(json: &str) -> Result<ModelList, String> {
    serde_json::from_str(json).map_err(|e| format!("not an OpenRouter model list: {e}"))
}

/// `author/slug` reduced to the form the import compares on.
fn key(id: &str) -> Option<String> {
    let id = id.split(':').next().unwrap_or(id); // `:free`, `:thinking` variants
    let (author, slug) = id.split_once('/')?;
    Some(format!(
        "{}/{}",
        naming::canonical_author(author),
        naming::normalize(slug)
    ))
}

/// What applying the list changed: (imported id, OpenRouter id) pairs.
pub fn apply(models: &mut [CatalogModel], list: &ModelList) -> Vec<(String, String)> {
    let mut renamed = Vec::new();
    let taken: std::collections::HashSet<String> = models.iter().map(|m| m.id.clone()).collect();
    for listed in &list.data {
        if listed.id.contains(':') {
            continue; // variants of a model listed on its own
        }
        let Some(k) = key(&listed.id) else { continue };
        // A dated OpenRouter id (`anthropic/claude-3.5-sonnet-20240620`) matches the model whose
        // aliases carry that snapshot (`anthropic/claude-3.5-sonnet@20240620`).
        let dated = listed.id.split_once('/').and_then(|(author, slug)| {
            let n = naming::parse(slug, false)?;
            let d = n.date?;
            Some(format!(
                "{}/{}@{d}",
                naming::canonical_author(author),
                n.slug
            ))
        });
        let Some(m) = models.iter_mut().find(|m| {
            key(&m.id).as_deref() == Some(k.as_str())
                || dated.as_ref().is_some_and(|d| m.aliases.contains(d))
        }) else {
            continue;
        };
        m.name = listed.name.clone();
        if let Some(d) = listed
            .description
            .as_deref()
            .filter(|d| !d.trim().is_empty())
        {
            m.description = Some(d.to_string());
        }
        if m.id != listed.id && !taken.contains(&listed.id) {
            let old = std::mem::replace(&mut m.id, listed.id.clone());
            m.aliases.retain(|a| a != &listed.id);
            m.aliases.insert(0, old.clone());
            renamed.push((old, listed.id.clone()));
        }
        if let Some(slug) = &listed.canonical_slug {
            if slug != &m.id && !m.aliases.contains(slug) {
                m.aliases.push(slug.clone());
            }
        }
    }
    renamed
}
