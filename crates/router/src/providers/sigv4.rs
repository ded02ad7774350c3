//! AWS Signature Version 4, for Bedrock. The canonical request (method, canonical URI,
//! canonical query, signed headers with their values, SHA-256 of the payload) is hashed into a
//! string to sign under the credential scope `date/region/service/aws4_request`, and signed with
//! a key derived from the secret by HMAC-SHA-256 over the date, region, service and
//! `aws4_request`. As for every AWS service but S3, the path is URI-encoded once more for the
//! canonical URI (a model id's `%3A` is signed as `%253A`).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::http::encode_segment;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// What is signed: the request as it goes on the wire.
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// The path as sent (already percent-encoded), e.g. `/model/a.b-v1%3A0/converse`.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Headers to sign, any case (`host` and `x-amz-date` must be among them).
    pub headers: &'a [(String, String)],
    pub payload: &'a [u8],
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length: new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical request and the signed-headers list.
pub fn canonical_request(req: &SignableRequest<'_>) -> (String, String) {
    let uri = if req.path.is_empty() || req.path == "/" {
        "/".to_string()
    } else {
        req.path
            .split('/')
            .map(encode_segment)
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut params: Vec<(String, String)> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                encode_segment(&percent_decode(k)),
                encode_segment(&percent_decode(v)),
            )
        })
        .collect();
    params.sort();
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let payload_hash = hex(&Sha256::digest(req.payload));
    (
        format!(
            "{}\n{uri}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}",
            req.method
        ),
        signed,
    )
}

/// The `Authorization` header value. `amz_date` is the `x-amz-date` header's value
/// (`YYYYMMDDTHHMMSSZ`).
pub fn authorization(
    creds: &Credentials<'_>,
    region: &str,
    service: &str,
    amz_date: &str,
    req: &SignableRequest<'_>,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let (canonical, signed) = canonical_request(req);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key_id
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CREDS: Credentials<'static> = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `get-vanilla` from AWS's SigV4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let h = headers(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        let req = SignableRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &h,
            payload: b"",
        };
        assert_eq!(
            authorization(&CREDS, "us-east-1", "service", "20150830T123600Z", &req),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// The IAM `ListUsers` example of AWS's signing documentation.
    #[test]
    fn aws_documentation_iam_example() {
        let h = headers(&[
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Host", "iam.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        let req = SignableRequest {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &h,
            payload: b"",
        };
        let auth = authorization(&CREDS, "us-east-1", "iam", "20150830T123600Z", &req);
        assert!(
            auth.ends_with(
                "SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            ),
            "{auth}"
        );
    }

    #[test]
    fn model_ids_in_paths_are_encoded_twice() {
        let h = headers(&[("host", "h"), ("x-amz-date", "20250101T000000Z")]);
        let req = SignableRequest {
            method: "POST",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            query: "",
            headers: &h,
            payload: b"{}",
        };
        let (canonical, _) = canonical_request(&req);
        assert!(
            canonical.contains("\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n")
        );
    }
}
