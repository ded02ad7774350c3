//! Verification of AWS Signature Version 4 on Bedrock routes: the canonical request is
//! rebuilt from what arrived (method, path as received and encoded again, sorted query, the
//! headers the client says it signed, SHA-256 of the body), signed with the configured secret,
//! and compared with the `Authorization` header's signature.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::router::{Ctx, Provider};
use crate::server::Outcome;
use crate::util;

/// How far `x-amz-date` may be from now, as AWS allows.
const SKEW_SECS: u64 = 15 * 60;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// RFC 3986 encoding of everything but unreserved characters.
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Parsed<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse(header: &str) -> Option<Parsed<'_>> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let parsed = Parsed {
        access_key_id: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (scope.next()? == "aws4_request").then_some(parsed)
}

/// Seconds since the epoch of `YYYYMMDDTHHMMSSZ`.
fn amz_time(s: &str) -> Option<u64> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<u64>().ok();
    if s.len() != 16 || s.get(8..9)? != "T" || !s.ends_with('Z') {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (hh, mm, ss) = (num(9, 11)?, num(11, 13)?, num(13, 15)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe;
    let days = days.checked_sub(719_468)?;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// AWS's 403 with the exception named in `x-amzn-ErrorType`.
fn deny(ctx: &Ctx, exception: &str, message: &str) -> Option<Outcome> {
    let mut outcome = ctx.error(Provider::Bedrock, 403, message);
    if let Outcome::Respond(resp) = &mut outcome {
        let kind =
            format!("{exception}:http://internal.amazon.com/coral/com.amazon.coral.service/");
        if let Ok(v) = hyper::header::HeaderValue::from_str(&kind) {
            resp.headers_mut().insert("x-amzn-errortype", v);
        }
    }
    Some(outcome)
}

/// `None` when the request is signed with the configured credentials, else the 403 AWS sends.
pub(crate) fn check(ctx: &Ctx) -> Option<Outcome> {
    let creds = ctx.shared.config.aws.as_ref()?;
    let Some(auth) = ctx.header("authorization").and_then(parse) else {
        return deny(
            ctx,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    if auth.access_key_id != creds.access_key_id {
        return deny(
            ctx,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    let Some(amz_date) = ctx.header("x-amz-date") else {
        return deny(ctx, "IncompleteSignatureException", "Missing x-amz-date");
    };
    let in_window = amz_time(amz_date).is_some_and(|t| t.abs_diff(util::now_secs()) <= SKEW_SECS);
    if !in_window || !amz_date.starts_with(auth.date) {
        return deny(
            ctx,
            "InvalidSignatureException",
            "Signature expired or not yet current.",
        );
    }
    if auth.service != "bedrock" || !auth.signed_headers.contains(&"host") {
        return deny(
            ctx,
            "InvalidSignatureException",
            "Credential should be scoped to a valid service and sign host.",
        );
    }
    let (path, query) = ctx.req.path.split_once('?').unwrap_or((&ctx.req.path, ""));
    let uri: Vec<String> = path.split('/').map(uri_encode).collect();
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&crate::router::percent_decode(k)),
                uri_encode(&crate::router::percent_decode(v)),
            )
        })
        .collect();
    params.sort();
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let value = ctx.header(name).unwrap_or_default();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        headers.push_str(&format!("{name}:{value}\n"));
    }
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{}\n{}",
        ctx.req.method,
        uri.join("/"),
        query.join("&"),
        auth.signed_headers.join(";"),
        hex(&Sha256::digest(&ctx.raw)),
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        auth.date.as_bytes(),
    );
    for part in [auth.region, auth.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    if hex(&hmac(&key, to_sign.as_bytes())) != auth.signature {
        return deny(
            ctx,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn amz_dates_convert() {
        assert_eq!(amz_time("19700101T000000Z"), Some(0));
        assert_eq!(amz_time("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(amz_time("2015-08-30"), None);
    }

    #[test]
    fn authorization_headers_parse() {
        let p = parse("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc").unwrap();
        assert_eq!(
            (p.access_key_id, p.region, p.service),
            ("AKID", "us-east-1", "bedrock")
        );
        assert_eq!(p.signed_headers, ["host", "x-amz-date"]);
        assert!(parse("Bearer x").is_none());
    }
}
