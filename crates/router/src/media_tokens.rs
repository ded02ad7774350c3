//! Upper bounds on the prompt tokens of images and files, for the request's hold. Text is
//! bounded by its bytes (byte-level tokenizers never emit more tokens than bytes); media are
//! not, so they get bounds from what their bytes say: an inline image's dimensions, a PDF's
//! page count. A provider may still report more (then the platform absorbs the difference),
//! but these bounds hold for the providers' published token formulas.

use base64::Engine;
use serde_json::Value;

/// Tokens per image whose size is unknown (a URL the provider fetches itself): above the
/// largest image OpenAI (1,445 tokens at high detail), Anthropic (about 1,600) and Gemini
/// (258 per 768-pixel tile, up to 16 tiles after scaling) count for one image.
pub const UNKNOWN_IMAGE: u64 = 4_200;
/// The most any vision model counts for one image: models that do not downscale count about
/// one token per 28 x 28 pixels up to their pixel budget (16,384 tokens for the largest).
const MAX_IMAGE: u64 = 16_384;
/// Tokens per PDF page: providers send each page as text and as an image (Anthropic documents
/// 1,500 to 3,000 per page).
const PER_PDF_PAGE: u64 = 3_000;
/// Tokens of a file whose content is unknown (a URL).
pub const UNKNOWN_FILE: u64 = 100_000;

/// Bound for one `image_url` part.
pub fn image(url: &str) -> u64 {
    let Some(bytes) = inline_prefix(url, 512 * 1024) else {
        return UNKNOWN_IMAGE;
    };
    match dimensions(&bytes) {
        Some((w, h)) => {
            let pixels = u64::from(w).saturating_mul(u64::from(h));
            // ~1 token per 750 pixels (Anthropic's formula, the densest of the big three),
            // never below the unknown-size allowance's floor for small images.
            (pixels / 750 + 100).clamp(300, MAX_IMAGE)
        }
        None => UNKNOWN_IMAGE,
    }
}

/// Bound for one `file` part: a PDF's pages, or the decoded size for anything else.
pub fn file(file: &Value) -> u64 {
    let data = file
        .get("file_data")
        .or_else(|| file.get("url"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(bytes) = inline_prefix(data, usize::MAX) else {
        return UNKNOWN_FILE;
    };
    let size = bytes.len() as u64;
    if bytes.starts_with(b"%PDF") {
        let pages = pdf_pages(&bytes).unwrap_or_else(|| size.div_ceil(3_000));
        return size.saturating_add(pages.max(1).saturating_mul(PER_PDF_PAGE));
    }
    size.max(1)
}

/// The decoded start (up to `limit` bytes) of a base64 data URL; None for anything else.
fn inline_prefix(url: &str, limit: usize) -> Option<Vec<u8>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    if !meta.ends_with(";base64") {
        return None;
    }
    // Decode whole 4-character groups only, as many as the limit needs.
    let chars = limit.saturating_mul(4) / 3;
    let take = data.len().min(chars.saturating_add(4)) / 4 * 4;
    let slice = data.get(..take).unwrap_or(data);
    base64::engine::general_purpose::STANDARD
        .decode(slice.trim_end_matches('='))
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(slice).ok())
}

/// Width and height of a PNG, GIF, JPEG or WebP image from its header.
fn dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let be32 =
        |i: usize| -> Option<u32> { Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?)) };
    let le16 = |i: usize| -> Option<u32> {
        Some(u32::from(u16::from_le_bytes(
            b.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let be16 = |i: usize| -> Option<u32> {
        Some(u32::from(u16::from_be_bytes(
            b.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((be32(16)?, be32(20)?));
    }
    if b.starts_with(b"GIF8") {
        return Some((le16(6)?, le16(8)?));
    }
    if b.len() > 30 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return match &b[12..16] {
            b"VP8 " => Some((le16(26)? & 0x3fff, le16(28)? & 0x3fff)),
            b"VP8L" => {
                let v = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
                Some(((v & 0x3fff) + 1, ((v >> 14) & 0x3fff) + 1))
            }
            b"VP8X" => {
                let w = u32::from_le_bytes([*b.get(24)?, *b.get(25)?, *b.get(26)?, 0]) + 1;
                let h = u32::from_le_bytes([*b.get(27)?, *b.get(28)?, *b.get(29)?, 0]) + 1;
                Some((w, h))
            }
            _ => None,
        };
    }
    if b.starts_with(&[0xff, 0xd8]) {
        // Walk the segments to the first start-of-frame marker.
        let mut i = 2;
        while i + 9 < b.len() {
            if b[i] != 0xff {
                i += 1;
                continue;
            }
            let marker = b[i + 1];
            if marker == 0xff {
                i += 1;
                continue;
            }
            let len = usize::try_from(be16(i + 2)?).ok()?;
            let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
            if sof {
                return Some((be16(i + 7)?, be16(i + 5)?));
            }
            i += 2 + len;
        }
    }
    None
}

/// Pages of a PDF: the largest `/Count` of a page tree, or the `/Type /Page` objects; None when
/// neither is visible (the page tree is inside compressed object streams).
fn pdf_pages(b: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(b);
    let mut count: Option<u64> = None;
    for (i, _) in text.match_indices("/Count") {
        let digits: String = text[i + 6..]
            .chars()
            .skip_while(|c| c.is_whitespace())
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(n) = digits.parse::<u64>() {
            count = Some(count.map_or(n, |c| c.max(n)));
        }
    }
    let objects = text
        .match_indices("/Type")
        .filter(|(i, _)| {
            let after: String = text[i + 5..]
                .chars()
                .skip_while(|c| c.is_whitespace())
                .take(6)
                .collect();
            after.starts_with("/Page") && !after.starts_with("/Pages")
        })
        .count() as u64;
    match (count, objects) {
        (Some(c), o) => Some(c.max(o)),
        (None, 0) => None,
        (None, o) => Some(o),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn data_url(media: &str, bytes: &[u8]) -> String {
        format!(
            "data:{media};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn image_bounds_follow_the_pixels() {
        assert_eq!(image(&data_url("image/png", &png(100, 100))), 300);
        assert_eq!(
            image(&data_url("image/png", &png(1568, 1568))),
            1568 * 1568 / 750 + 100
        );
        assert_eq!(
            image(&data_url("image/png", &png(20_000, 20_000))),
            MAX_IMAGE
        );
        assert_eq!(image("https://example.com/cat.png"), UNKNOWN_IMAGE);
        assert_eq!(
            image(&data_url("image/png", b"not an image")),
            UNKNOWN_IMAGE
        );
    }

    #[test]
    fn jpeg_gif_and_webp_dimensions_are_read() {
        // JPEG: SOI, an APP0 segment, then SOF0 with height 480 and width 640.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00];
        jpeg.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0xe0, 0x02, 0x80, 0x03]);
        jpeg.extend_from_slice(&[0; 16]);
        assert_eq!(dimensions(&jpeg), Some((640, 480)));
        let gif = b"GIF89a\x40\x01\xf0\x00rest";
        assert_eq!(dimensions(gif), Some((320, 240)));
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
        webp.extend_from_slice(&[0x7f, 0x02, 0x00, 0xdf, 0x01, 0x00, 0, 0]);
        assert_eq!(dimensions(&webp), Some((640, 480)));
    }

    #[test]
    fn pdf_bounds_count_pages() {
        let pdf = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 40 /Kids [] >> endobj\n\
                    2 0 obj << /Type /Page >> endobj";
        let file = serde_json::json!({"file_data": data_url("application/pdf", pdf)});
        assert_eq!(super::file(&file), pdf.len() as u64 + 40 * PER_PDF_PAGE);
        let url = serde_json::json!({"file_data": "https://example.com/x.pdf"});
        assert_eq!(super::file(&url), UNKNOWN_FILE);
    }
}
