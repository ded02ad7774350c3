//! Media references in OpenAI content parts (`image_url`, `file`, `input_audio`), decoded once
//! so each wire can render them as its own blocks.

use serde_json::Value;

/// Where the bytes of an image or file are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// Inline base64 data with its media type (from a `data:` URL or `input_audio`).
    Inline { media_type: String, data: String },
    /// A remote http(s) URL the provider fetches itself.
    Url { url: String },
}

/// Parses an `image_url.url`: a base64 `data:` URL or an http(s) URL.
pub fn parse_url(url: &str) -> Result<Media, String> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| "data URL has no ',' before its data".to_string())?;
        let media_type = meta
            .strip_suffix(";base64")
            .ok_or_else(|| "only base64 data URLs are supported".to_string())?;
        let media_type = media_type.split(';').next().unwrap_or_default();
        if media_type.is_empty() {
            return Err("data URL has no media type".into());
        }
        return Ok(Media::Inline {
            media_type: media_type.to_ascii_lowercase(),
            data: data.to_string(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Media::Url {
            url: url.to_string(),
        });
    }
    Err("must be an http(s) URL or a base64 data URL".into())
}

/// Parses a `file` part (`{"file_data": <data URL or URL>, "filename": ...}`). OpenAI file ids
/// live in OpenAI's storage, which no other provider can read.
pub fn parse_file(file: &Value) -> Result<Media, String> {
    if file.get("file_id").is_some() && file.get("file_data").is_none() {
        return Err("file_id references OpenAI file storage; send file_data instead".into());
    }
    let data = file
        .get("file_data")
        .or_else(|| file.get("url"))
        .and_then(Value::as_str)
        .ok_or_else(|| "file needs file_data (a base64 data URL or an http(s) URL)".to_string())?;
    parse_url(data)
}

/// Parses an `input_audio` part (`{"data": <base64>, "format": "wav" | "mp3" | ...}`).
pub fn parse_audio(audio: &Value) -> Result<Media, String> {
    let data = audio
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| "input_audio needs data (base64)".to_string())?;
    let format = audio.get("format").and_then(Value::as_str).unwrap_or("wav");
    let media_type = match format {
        "mp3" | "mpeg" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "aiff" => "audio/aiff",
        other => return Err(format!("input_audio format '{other}' is not supported")),
    };
    Ok(Media::Inline {
        media_type: media_type.into(),
        data: data.to_string(),
    })
}

/// A media type for a remote URL, from its extension; `fallback` when it has none we know.
pub fn guess_media_type(url: &str, fallback: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        _ => fallback,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn data_and_http_urls() {
        assert_eq!(
            parse_url("data:image/png;base64,AAAA").unwrap(),
            Media::Inline {
                media_type: "image/png".into(),
                data: "AAAA".into()
            }
        );
        assert!(matches!(
            parse_url("https://x/y.jpg").unwrap(),
            Media::Url { .. }
        ));
        assert!(parse_url("data:image/png,raw").is_err());
        assert!(parse_url("ftp://x").is_err());
        assert_eq!(
            guess_media_type("https://x/a.PDF?sig=1", "x"),
            "application/pdf"
        );
        assert!(parse_file(&serde_json::json!({"file_id": "file-1"})).is_err());
    }
}
