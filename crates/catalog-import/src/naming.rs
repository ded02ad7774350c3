//! Canonical model ids. Providers name one model many ways (`meta-llama/Llama-3.3-70B-Instruct`,
//! `accounts/fireworks/models/llama-v3p3-70b-instruct`, `meta.llama3-3-70b-instruct-v1:0`,
//! `claude-3-5-sonnet@20240620`); the catalog lists it once, as `author/slug` in OpenRouter's
//! style, with the providers' own ids as aliases. This module turns one provider id into the
//! model's author, slug and snapshot date.

/// What a provider's model id says about the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName {
    /// OpenRouter-style author (`meta-llama`, `anthropic`, `qwen`).
    pub author: String,
    /// Lowercase slug without the snapshot date (`llama-3.3-70b-instruct`, `claude-3.5-sonnet`).
    pub slug: String,
    /// Snapshot date as the vendor writes it (`20240620`, `2024-08-06`), if any.
    pub date: Option<String>,
    /// The vendor's undated base id (`claude-3-5-sonnet`), for `@date` and `-date` aliases.
    pub vendor_base: String,
    /// A moving `-latest` pointer rather than a fixed model.
    pub latest: bool,
}

impl ModelName {
    pub fn group(&self) -> String {
        format!("{}/{}", self.author, self.slug)
    }
}

/// Bedrock cross-region inference profile prefixes (`us.anthropic.claude-...`).
const BEDROCK_PROFILES: [&str; 7] = ["us.", "eu.", "apac.", "au.", "jp.", "global.", "ca."];

/// Path segments that are hosting details rather than an author (`accounts/fireworks/models/x`).
const NOT_AUTHORS: [&str; 3] = ["accounts", "fireworks", "models"];

/// Authors by the first word of a model name, checked in order (longest prefixes first where
/// one is a prefix of another).
const AUTHOR_BY_PREFIX: &[(&str, &str)] = &[
    ("gpt-oss", "openai"),
    ("claude", "anthropic"),
    ("chatgpt", "openai"),
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding-3", "openai"),
    ("text-embedding-ada", "openai"),
    ("gemini", "google"),
    ("gemma", "google"),
    ("text-embedding-00", "google"),
    ("text-multilingual-embedding", "google"),
    ("llama", "meta-llama"),
    ("codellama", "meta-llama"),
    ("code-llama", "meta-llama"),
    ("mistral", "mistralai"),
    ("mixtral", "mistralai"),
    ("codestral", "mistralai"),
    ("pixtral", "mistralai"),
    ("ministral", "mistralai"),
    ("magistral", "mistralai"),
    ("devstral", "mistralai"),
    ("voxtral", "mistralai"),
    ("open-mistral", "mistralai"),
    ("open-mixtral", "mistralai"),
    ("open-codestral", "mistralai"),
    ("deepseek", "deepseek"),
    ("qwen", "qwen"),
    ("qwq", "qwen"),
    ("grok", "x-ai"),
    ("kimi", "moonshotai"),
    ("moonshot", "moonshotai"),
    ("glm", "z-ai"),
    ("zai-glm", "z-ai"),
    ("command", "cohere"),
    ("embed-english", "cohere"),
    ("embed-multilingual", "cohere"),
    ("embed-v4", "cohere"),
    ("nova", "amazon"),
    ("titan", "amazon"),
    ("jamba", "ai21"),
    ("phi-", "microsoft"),
    ("minimax", "minimax"),
    ("nemotron", "nvidia"),
    ("sonar", "perplexity"),
    ("hermes", "nousresearch"),
];

/// OpenRouter's spelling of organisation names found in provider ids.
const AUTHOR_ALIASES: &[(&str, &str)] = &[
    ("deepseek-ai", "deepseek"),
    ("zai-org", "z-ai"),
    ("zai", "z-ai"),
    ("thudm", "z-ai"),
    ("xai", "x-ai"),
    ("minimaxai", "minimax"),
    ("mistral", "mistralai"),
    ("meta", "meta-llama"),
    ("amazon", "amazon"),
    ("moonshot", "moonshotai"),
];

/// Parses a provider's model id. `bedrock` turns on Bedrock's `vendor.model-v1:0` rules.
pub fn parse(upstream: &str, bedrock: bool) -> Option<ModelName> {
    let mut id = upstream.trim().to_string();
    let mut author: Option<String> = None;
    if bedrock {
        for p in BEDROCK_PROFILES {
            if let Some(rest) = id.strip_prefix(p) {
                id = rest.to_string();
                break;
            }
        }
        if let Some((vendor, rest)) = id.split_once('.') {
            author = Some(vendor.to_ascii_lowercase());
            id = rest.to_string();
        }
        id = strip_bedrock_version(&id);
    }
    let mut segments: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let name = segments.pop()?.to_string();
    if author.is_none() {
        author = segments
            .iter()
            .rev()
            .map(|s| s.to_ascii_lowercase())
            .find(|s| !NOT_AUTHORS.contains(&s.as_str()));
    }
    let mut name = name.to_ascii_lowercase().replace(['_', ' '], "-");

    // Vertex: `claude-3-5-sonnet@20240620`, `claude-opus-4-6@default`.
    let mut date = None;
    if let Some((base, version)) = name.clone().split_once('@') {
        name = base.to_string();
        if is_compact_date(version) {
            date = Some(version.to_string());
        } else if version != "default" {
            return None; // `@001` and other vendor revisions are not model snapshots we map
        }
    }
    let latest = match name.strip_suffix("-latest") {
        Some(base) => {
            name = base.to_string();
            true
        }
        None => false,
    };
    if date.is_none() {
        if let Some((base, d)) = split_date(&name) {
            date = Some(d);
            name = base;
        }
    }
    let vendor_base = name.clone();
    let slug = normalize(&name);
    if slug.is_empty() {
        return None;
    }
    let author = author
        .map(|a| canonical_author(&a))
        .filter(|a| !a.is_empty())
        .or_else(|| author_from_name(&slug))?;
    Some(ModelName {
        author,
        slug,
        date,
        vendor_base,
        latest,
    })
}

/// `anthropic.claude-3-5-sonnet-20240620-v1:0` → `claude-3-5-sonnet-20240620`;
/// `openai.gpt-oss-120b-1:0` → `gpt-oss-120b`; `mistral.mistral-7b-instruct-v0:2` →
/// `mistral-7b-instruct`.
fn strip_bedrock_version(id: &str) -> String {
    let mut s = id.to_string();
    if let Some((base, rev)) = s.rsplit_once(':') {
        if rev.chars().all(|c| c.is_ascii_digit()) {
            s = base.to_string();
        }
    }
    if let Some((base, v)) = s.rsplit_once('-') {
        let digits = v.strip_prefix('v').unwrap_or(v);
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && digits.len() <= 2 {
            s = base.to_string();
        }
    }
    s
}

fn is_compact_date(s: &str) -> bool {
    s.len() == 8 && s.starts_with("20") && s.chars().all(|c| c.is_ascii_digit())
}

/// A trailing snapshot date: `-20240620` or `-2024-08-06`.
fn split_date(name: &str) -> Option<(String, String)> {
    if let Some((base, d)) = name.rsplit_once('-') {
        if is_compact_date(d) {
            return Some((base.to_string(), d.to_string()));
        }
    }
    let bytes = name.as_bytes();
    if bytes.len() > 11 {
        let tail = &name[name.len() - 11..];
        let iso = tail.starts_with("-20")
            && tail[1..].char_indices().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        if iso {
            return Some((name[..name.len() - 11].to_string(), tail[1..].to_string()));
        }
    }
    None
}

/// The shared spelling of one model across providers.
pub fn normalize(name: &str) -> String {
    let mut s = name.to_ascii_lowercase();
    // Fireworks writes versions as `v3p3`, `qwen2p5`.
    s = replace_digit_p_digit(&s);
    for (from, to) in [("meta-llama-", "llama-"), ("llama-v", "llama-")] {
        if let Some(rest) = s.strip_prefix(from) {
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                s = format!("{to}{rest}");
            }
        }
    }
    // `llama3-3-70b`, `llama3.1-8b` → `llama-3...`
    if let Some(rest) = s.strip_prefix("llama") {
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            s = format!("llama-{rest}");
        }
    }
    s = dot_versions(&s);
    for (suffix, to) in [
        ("-instruct-turbo", "-instruct"),
        ("-fp8", ""),
        ("-tput", ""),
    ] {
        if let Some(base) = s.strip_suffix(suffix) {
            s = format!("{base}{to}");
        }
    }
    s.trim_matches('-').to_string()
}

fn replace_digit_p_digit(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = c == 'p'
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        out.push(if between_digits { '.' } else { c });
    }
    out
}

/// `claude-3-5-sonnet` → `claude-3.5-sonnet`, `llama-3-1-8b` → `llama-3.1-8b`: two single
/// digits joined by a dash, each standing alone between dashes, are one dotted version.
fn dot_versions(s: &str) -> String {
    let parts: Vec<&str> = s.split('-').collect();
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    let mut i = 0;
    while i < parts.len() {
        let single = |p: &str| p.len() == 1 && p.chars().all(|c| c.is_ascii_digit());
        let versioned_word = |p: &str| {
            // `v3` followed by `1` (deepseek-v3-1) also reads as v3.1
            p.len() == 2 && p.starts_with('v') && p[1..].chars().all(|c| c.is_ascii_digit())
        };
        if i + 1 < parts.len()
            && (single(parts[i]) || versioned_word(parts[i]))
            && single(parts[i + 1])
            && i > 0
        {
            out.push(format!("{}.{}", parts[i], parts[i + 1]));
            i += 2;
        } else {
            out.push(parts[i].to_string());
            i += 1;
        }
    }
    out.join("-")
}

pub fn canonical_author(org: &str) -> String {
    let org = org.to_ascii_lowercase();
    AUTHOR_ALIASES
        .iter()
        .find(|(from, _)| *from == org)
        .map(|(_, to)| to.to_string())
        .unwrap_or(org)
}

pub fn author_from_name(slug: &str) -> Option<String> {
    AUTHOR_BY_PREFIX
        .iter()
        .find(|(prefix, _)| slug.starts_with(prefix))
        .map(|(_, author)| author.to_string())
}

/// A display name for a model without one: `Meta Llama: Llama 3.3 70B Instruct`.
pub fn display_name(author_display: &str, slug: &str) -> String {
    let words: Vec<String> = slug
        .split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let upper = [
                "gpt", "oss", "glm", "r1", "v3", "v4", "vl", "it", "ocr", "moe",
            ];
            if upper.contains(&w) || is_size(w) {
                w.to_ascii_uppercase()
            } else {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect();
    format!("{author_display}: {}", words.join(" "))
}

/// `70b`, `8x7b`, `a22b`, `1.5b`: parameter counts read better upper-cased.
fn is_size(w: &str) -> bool {
    w.len() > 1
        && (w.ends_with('b') || w.ends_with('m'))
        && w[..w.len() - 1]
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == 'x' || c == 'a')
        && w.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn group(id: &str, bedrock: bool) -> (String, Option<String>) {
        let n = parse(id, bedrock).unwrap();
        (n.group(), n.date)
    }

    #[test]
    fn one_model_many_spellings() {
        let llama = "meta-llama/llama-3.3-70b-instruct".to_string();
        for (id, bedrock) in [
            ("meta-llama/Llama-3.3-70B-Instruct", false),
            ("meta-llama/Llama-3.3-70B-Instruct-Turbo", false),
            ("accounts/fireworks/models/llama-v3p3-70b-instruct", false),
            ("meta.llama3-3-70b-instruct-v1:0", true),
            ("us.meta.llama3-3-70b-instruct-v1:0", true),
            ("llama-3.3-70b-instruct", false),
        ] {
            assert_eq!(group(id, bedrock), (llama.clone(), None), "{id}");
        }
        let sonnet = (
            "anthropic/claude-3.5-sonnet".to_string(),
            Some("20240620".to_string()),
        );
        for (id, bedrock) in [
            ("claude-3-5-sonnet@20240620", false),
            ("claude-3-5-sonnet-20240620", false),
            ("anthropic.claude-3-5-sonnet-20240620-v1:0", true),
            ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", true),
        ] {
            assert_eq!(group(id, bedrock), sonnet, "{id}");
        }
        assert_eq!(
            group("openai.gpt-oss-120b-1:0", true),
            ("openai/gpt-oss-120b".into(), None)
        );
        assert_eq!(group("openai/gpt-oss-120b", false).0, "openai/gpt-oss-120b");
        assert_eq!(group("gpt-oss-120b", false).0, "openai/gpt-oss-120b");
        assert_eq!(
            group("gpt-4o-2024-08-06", false),
            ("openai/gpt-4o".into(), Some("2024-08-06".into()))
        );
        assert_eq!(
            group("claude-sonnet-4-5@20250929", false).0,
            "anthropic/claude-sonnet-4.5"
        );
        assert_eq!(
            group("deepseek-ai/DeepSeek-V3", false).0,
            "deepseek/deepseek-v3"
        );
        assert_eq!(
            group("Qwen/Qwen2.5-72B-Instruct", false).0,
            "qwen/qwen2.5-72b-instruct"
        );
        assert_eq!(
            group("accounts/fireworks/models/qwen2p5-72b-instruct", false).0,
            "qwen/qwen2.5-72b-instruct"
        );
        assert_eq!(group("gemini-2.5-pro", false).0, "google/gemini-2.5-pro");
        assert_eq!(
            group("mistral.mistral-large-2407-v1:0", true).0,
            "mistralai/mistral-large-2407"
        );
    }

    #[test]
    fn latest_and_vertex_versions() {
        let n = parse("claude-3-7-sonnet-latest", false).unwrap();
        assert!(n.latest);
        assert_eq!(n.group(), "anthropic/claude-3.7-sonnet");
        assert_eq!(parse("claude-opus-4-6@default", false).unwrap().date, None);
        assert!(parse("jamba-1.5-large@001", false).is_none());
        assert_eq!(
            parse("claude-3-5-sonnet@20240620", false)
                .unwrap()
                .vendor_base,
            "claude-3-5-sonnet"
        );
    }

    #[test]
    fn names_read_well() {
        assert_eq!(
            display_name("Meta Llama", "llama-3.3-70b-instruct"),
            "Meta Llama: Llama 3.3 70B Instruct"
        );
        assert_eq!(
            display_name("OpenAI", "gpt-oss-120b"),
            "OpenAI: GPT OSS 120B"
        );
    }
}
