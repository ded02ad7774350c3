//! Offers to catalog models: offers of one model from several providers become one model with
//! several endpoints; snapshot dates decide whether dated ids are models of their own; the
//! providers' ids become aliases; the overrides file has the last word.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rust_decimal::Decimal;

use crate::decimal;
use crate::litellm::{Kind, Offer};
use crate::naming;
use crate::overrides::{EndpointPatch, ModelPatch, Overrides};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    pub prompt: Decimal,
    pub completion: Decimal,
    pub input_cache_read: Option<Decimal>,
    pub input_cache_write: Option<Decimal>,
    pub request: Option<Decimal>,
    pub image: Option<Decimal>,
}

#[derive(Debug, Clone)]
pub struct CatalogEndpoint {
    pub provider: String,
    pub upstream_model: String,
    pub context_length: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub input_modalities: Option<Vec<String>>,
    pub supported_parameters: Option<Vec<String>>,
    pub pricing: Pricing,
    /// Where the prices come from.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct CatalogModel {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub aliases: Vec<String>,
    pub context_length: u64,
    pub max_output_tokens: u64,
    pub input_modalities: Vec<String>,
    pub supported_parameters: Vec<String>,
    pub kind: Kind,
    pub endpoints: Vec<CatalogEndpoint>,
}

/// How an offer names its model.
struct Placed<'a> {
    offer: &'a Offer,
    id: String,
    /// Named by the overrides' `[canonical]` table: a nickname, the last choice of its provider.
    nickname: bool,
}

/// Builds the models from the offers (in no particular order; the result is sorted by id).
pub fn models(offers: &[Offer], overrides: &Overrides) -> Vec<CatalogModel> {
    let placed = place(offers, overrides);
    let mut by_id: BTreeMap<String, Vec<&Placed>> = BTreeMap::new();
    for p in &placed {
        by_id.entry(p.id.clone()).or_default().push(p);
    }
    let provider_rank: HashMap<&str, usize> = overrides
        .providers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut models = Vec::new();
    for (id, group) in by_id {
        if let Some(m) = model(&id, &group, overrides, &provider_rank) {
            models.push(m);
        }
    }
    add_aliases(&mut models, &placed);
    models
}

/// Decides every offer's model id. Within one `author/slug`, a single snapshot date (or none)
/// means one model; several dates mean one model per date (`openai/gpt-4o-2024-08-06`), and
/// undated or `-latest` offers are the moving model `author/slug`.
fn place<'a>(offers: &'a [Offer], overrides: &Overrides) -> Vec<Placed<'a>> {
    let mut dates: HashMap<(String, Kind), BTreeSet<String>> = HashMap::new();
    for o in offers {
        if let Some(d) = &o.name.date {
            dates
                .entry((o.name.group(), o.kind))
                .or_default()
                .insert(digits(d));
        }
    }
    offers
        .iter()
        .map(|o| {
            let forced = overrides
                .canonical
                .get(&format!("{}:{}", o.provider, o.upstream));
            let id = match forced {
                Some(id) => id.clone(),
                None => {
                    let group = o.name.group();
                    let several = dates
                        .get(&(group.clone(), o.kind))
                        .is_some_and(|d| d.len() > 1);
                    match (&o.name.date, several) {
                        (Some(d), true) => format!("{group}-{d}"),
                        _ => group,
                    }
                }
            };
            let id = overrides.rename.get(&id).cloned().unwrap_or(id);
            Placed {
                offer: o,
                id,
                nickname: forced.is_some(),
            }
        })
        .collect()
}

fn digits(date: &str) -> String {
    date.chars().filter(char::is_ascii_digit).collect()
}

/// Preference among one provider's offers of one model: a pinned snapshot over a moving name,
/// a Bedrock US inference profile over the in-region id, then the shorter id.
fn preference(p: &Placed) -> (bool, u8, u8, usize, String) {
    let o = p.offer;
    let pinned = if o.name.date.is_some() {
        0
    } else if o.name.latest {
        2
    } else {
        1
    };
    let profile = if o.upstream.starts_with("us.") {
        0
    } else if o.upstream.contains('.') && o.upstream.split('.').count() > 2 {
        2
    } else {
        1
    };
    (
        p.nickname,
        pinned,
        profile,
        o.upstream.len(),
        o.upstream.clone(),
    )
}

fn model(
    id: &str,
    group: &[&Placed],
    overrides: &Overrides,
    provider_rank: &HashMap<&str, usize>,
) -> Option<CatalogModel> {
    // One endpoint per provider.
    let mut per_provider: BTreeMap<usize, &Placed> = BTreeMap::new();
    for p in group {
        let rank = *provider_rank.get(p.offer.provider.as_str())?;
        let better = per_provider
            .get(&rank)
            .is_none_or(|cur| preference(p) < preference(cur));
        if better {
            per_provider.insert(rank, p);
        }
    }
    let chosen: Vec<&Offer> = per_provider.into_values().map(|p| p.offer).collect();
    let kind = chosen.first()?.kind;
    let author = id.split('/').next().unwrap_or_default();
    let reference = chosen
        .iter()
        .find(|o| {
            overrides
                .provider(&o.provider)
                .is_some_and(|p| p.first_party.iter().any(|a| a == author))
        })
        .or_else(|| chosen.iter().max_by_key(|o| (o.context, o.max_output)))?;
    let params = reference.caps.supported_parameters(kind);
    let modalities = reference.caps.input_modalities();
    let endpoints = chosen
        .iter()
        .map(|o| {
            let p = o.caps.supported_parameters(kind);
            let m = o.caps.input_modalities();
            CatalogEndpoint {
                provider: o.provider.clone(),
                upstream_model: o.upstream.clone(),
                context_length: (o.context != reference.context).then_some(o.context),
                max_output_tokens: (o.max_output != reference.max_output).then_some(o.max_output),
                input_modalities: (m != modalities).then_some(m),
                supported_parameters: (p != params).then_some(p),
                pricing: Pricing {
                    prompt: o.prices.prompt,
                    completion: o.prices.completion,
                    input_cache_read: o.prices.input_cache_read,
                    input_cache_write: o.prices.input_cache_write,
                    request: None,
                    image: None,
                },
                source: format!("litellm: {}", o.source_key),
            }
        })
        .collect();
    let slug = id.split_once('/').map_or(id, |(_, s)| s);
    let author_display = overrides
        .import
        .authors
        .get(author)
        .cloned()
        .unwrap_or_else(|| author.to_string());
    Some(CatalogModel {
        id: id.to_string(),
        name: naming::display_name(&author_display, slug),
        description: None,
        aliases: Vec::new(),
        context_length: reference.context,
        max_output_tokens: reference.max_output,
        input_modalities: modalities,
        supported_parameters: params,
        kind,
        endpoints,
    })
}

/// Aliases: every provider id of the model (also those not chosen as its endpoint), the
/// `@date` and `-date` spellings of dated Claude-style ids, `author/slug@date`, and for a family
/// with several snapshots and no moving model, `author/slug` for the newest. An alias is never
/// another model's id, and the first model (in id order) to claim one keeps it.
fn add_aliases(models: &mut [CatalogModel], placed: &[Placed]) {
    let ids: HashSet<String> = models.iter().map(|m| m.id.clone()).collect();
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in placed {
        let o = p.offer;
        let list = wanted.entry(p.id.clone()).or_default();
        list.push(o.upstream.clone());
        if let Some(date) = &o.name.date {
            let compact = digits(date);
            if compact.len() == 8 && date.len() == 8 {
                list.push(format!("{}@{compact}", o.name.vendor_base));
                list.push(format!("{}-{compact}", o.name.vendor_base));
            }
            list.push(format!("{}@{date}", o.name.group()));
        }
        if o.name.latest {
            list.push(format!("{}-latest", o.name.vendor_base));
        }
    }
    // `author/slug` for the newest snapshot when no moving model has that id.
    let mut newest: BTreeMap<String, (String, String)> = BTreeMap::new();
    for p in placed {
        if let Some(date) = &p.offer.name.date {
            let group = p.offer.name.group();
            if p.id != group {
                let d = digits(date);
                let entry = newest.entry(group).or_insert((d.clone(), p.id.clone()));
                if d > entry.0 {
                    *entry = (d, p.id.clone());
                }
            }
        }
    }
    for (group, (_, id)) in newest {
        wanted.entry(id).or_default().push(group);
    }
    let mut taken: HashSet<String> = ids.clone();
    for m in models.iter_mut() {
        let mut list: Vec<String> = wanted.remove(&m.id).unwrap_or_default();
        list.sort();
        list.dedup();
        for alias in list {
            if alias != m.id && !taken.contains(&alias) {
                taken.insert(alias.clone());
                m.aliases.push(alias);
            }
        }
    }
}

/// Applies the overrides file's model patches. Errors name the patch.
pub fn apply_patches(models: &mut Vec<CatalogModel>, patches: &[ModelPatch]) -> Result<(), String> {
    for patch in patches {
        let pos = models.iter().position(|m| m.id == patch.id);
        if patch.remove {
            if let Some(i) = pos {
                models.remove(i);
            }
            continue;
        }
        let model = match pos {
            Some(i) => &mut models[i],
            None => {
                let name = patch.name.clone().ok_or_else(|| {
                    format!("model '{}': not imported, so a patch must give name, context_length, max_output_tokens and endpoints", patch.id)
                })?;
                let (Some(context), Some(max_output)) =
                    (patch.context_length, patch.max_output_tokens)
                else {
                    return Err(format!(
                        "model '{}': a new model needs context_length and max_output_tokens",
                        patch.id
                    ));
                };
                models.push(CatalogModel {
                    id: patch.id.clone(),
                    name,
                    description: None,
                    aliases: Vec::new(),
                    context_length: context,
                    max_output_tokens: max_output,
                    input_modalities: vec!["text".into()],
                    supported_parameters: Vec::new(),
                    kind: if patch.kind.as_deref() == Some("embedding") {
                        Kind::Embedding
                    } else {
                        Kind::Chat
                    },
                    endpoints: Vec::new(),
                });
                models.last_mut().ok_or("unreachable")?
            }
        };
        if let Some(n) = &patch.name {
            model.name = n.clone();
        }
        if let Some(d) = &patch.description {
            model.description = Some(d.clone());
        }
        for a in &patch.aliases {
            if !model.aliases.contains(a) {
                model.aliases.push(a.clone());
            }
        }
        if let Some(c) = patch.context_length {
            model.context_length = c;
        }
        if let Some(m) = patch.max_output_tokens {
            model.max_output_tokens = m;
        }
        if let Some(m) = &patch.input_modalities {
            model.input_modalities = m.clone();
        }
        if let Some(p) = &patch.supported_parameters {
            model.supported_parameters = p.clone();
        }
        model
            .endpoints
            .retain(|e| !patch.remove_endpoints.contains(&e.provider));
        for e in &patch.endpoints {
            let endpoint = endpoint_from_patch(&patch.id, e)?;
            model.endpoints.retain(|x| x.provider != e.provider);
            model.endpoints.push(endpoint);
        }
        if model.endpoints.is_empty() {
            return Err(format!(
                "model '{}': no endpoints left after the patch",
                patch.id
            ));
        }
    }
    // An alias a patch added wins over an imported one elsewhere.
    let patched: HashSet<String> = patches.iter().flat_map(|p| p.aliases.clone()).collect();
    let patch_ids: HashSet<&str> = patches.iter().map(|p| p.id.as_str()).collect();
    for m in models.iter_mut() {
        if !patch_ids.contains(m.id.as_str()) {
            m.aliases.retain(|a| !patched.contains(a));
        }
    }
    Ok(())
}

fn endpoint_from_patch(model: &str, e: &EndpointPatch) -> Result<CatalogEndpoint, String> {
    let get = |k: &str| -> Result<Option<Decimal>, String> {
        e.pricing
            .get(k)
            .map(|v| {
                decimal::price(v)
                    .map_err(|r| format!("model '{model}' endpoint {}: {k}: {r}", e.provider))
            })
            .transpose()
    };
    for k in e.pricing.keys() {
        if ![
            "prompt",
            "completion",
            "input_cache_read",
            "input_cache_write",
            "request",
            "image",
        ]
        .contains(&k.as_str())
        {
            return Err(format!(
                "model '{model}' endpoint {}: unknown price '{k}'",
                e.provider
            ));
        }
    }
    let required = |k: &str| {
        get(k)?.ok_or_else(|| {
            format!(
                "model '{model}' endpoint {}: {k} price is required",
                e.provider
            )
        })
    };
    Ok(CatalogEndpoint {
        provider: e.provider.clone(),
        upstream_model: e.upstream_model.clone(),
        context_length: e.context_length,
        max_output_tokens: e.max_output_tokens,
        input_modalities: e.input_modalities.clone(),
        supported_parameters: e.supported_parameters.clone(),
        pricing: Pricing {
            prompt: required("prompt")?,
            completion: required("completion")?,
            input_cache_read: get("input_cache_read")?,
            input_cache_write: get("input_cache_write")?,
            request: get("request")?,
            image: get("image")?,
        },
        source: e
            .source
            .clone()
            .unwrap_or_else(|| "catalog-overrides.toml".into()),
    })
}
